"""Issue 16: no stored date out of range. Authorization windows and ledger service dates
written before the bounds were checked are clamped to 1900-01-01 .. 2200-12-31 (an
authorization "from year 1" still covers every bookable day; clamping keeps start <= end),
then the CHECKs are added."""

import datetime

from django.db import migrations, models

FIRST_DAY, LAST_DAY = datetime.date(1900, 1, 1), datetime.date(2200, 12, 31)


def clean(apps, schema_editor):
    Authorization = apps.get_model("authorizations", "Authorization")
    UnitReservation = apps.get_model("authorizations", "UnitReservation")
    for model, fields in ((Authorization, ("start_date", "end_date")), (UnitReservation, ("service_date",))):
        for field in fields:
            model.objects.filter(**{f"{field}__lt": FIRST_DAY}).update(**{field: FIRST_DAY})
            model.objects.filter(**{f"{field}__gt": LAST_DAY}).update(**{field: LAST_DAY})


class Migration(migrations.Migration):

    dependencies = [
        ('authorizations', '0001_initial'),
    ]

    operations = [migrations.RunPython(clean, migrations.RunPython.noop)]

"""Issue 16: no stored date out of range (see clinic.inputs.stored_range). Coverage rows written
before the bounds were checked are brought into range without losing what they meant, in their
own transaction before 0007 adds the CHECKs:

- an effective_to after 2200 becomes open (NULL, the same meaning);
- an effective_from before 1900 becomes 1900-01-01 (the coverage still covers every day it did
  that a visit can have);
- a coverage lying wholly outside the range covers no visit: it is deactivated and its dates
  clamped, so the row (which claims may name) is kept.

A patient's date of birth cannot be out of range: the API, the admin and the patient pages
refused dates before 1900 and in the future before this migration. One that is would stop 0007
on its CHECK for an operator to look at, rather than be changed here.
"""

import datetime

from django.db import migrations
from django.db.models import Q

FIRST_DAY, LAST_DAY = datetime.date(1900, 1, 1), datetime.date(2200, 12, 31)


def clean(apps, schema_editor):
    Coverage = apps.get_model("practice", "Coverage")
    outside = Q(effective_to__lt=FIRST_DAY) | Q(effective_from__gt=LAST_DAY)
    Coverage.objects.filter(outside, effective_from__gt=LAST_DAY).update(
        is_active=False, effective_from=LAST_DAY, effective_to=LAST_DAY
    )
    Coverage.objects.filter(outside).update(
        is_active=False, effective_from=FIRST_DAY, effective_to=FIRST_DAY
    )
    Coverage.objects.filter(effective_to__gt=LAST_DAY).update(effective_to=None)
    Coverage.objects.filter(effective_from__lt=FIRST_DAY).update(effective_from=FIRST_DAY)


class Migration(migrations.Migration):
    dependencies = [
        ("practice", "0005_clinicsettings_require_staff_two_factor"),
    ]

    operations = [migrations.RunPython(clean, migrations.RunPython.noop)]

"""Issue 16: the CHECKs that keep every stored date in range (see 0002_dates_into_stored_range,
which brought the older rows into it first, in its own transaction)."""

import datetime

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("authorizations", "0002_dates_into_stored_range"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='authorization',
            constraint=models.CheckConstraint(condition=models.Q(('start_date__gte', datetime.date(1900, 1, 1)), ('start_date__lte', datetime.date(2200, 12, 31)), ('end_date__gte', datetime.date(1900, 1, 1)), ('end_date__lte', datetime.date(2200, 12, 31))), name='authorization_dates_stored_range'),
        ),
        migrations.AddConstraint(
            model_name='unitreservation',
            constraint=models.CheckConstraint(condition=models.Q(('service_date__gte', datetime.date(1900, 1, 1)), ('service_date__lte', datetime.date(2200, 12, 31))), name='unit_reservation_stored_range'),
        ),
    ]

"""Issue 16: the CHECKs that keep a patient's date of birth and a coverage's dates in range (see
0006_dates_into_stored_range, which brought older coverage rows into it first)."""

import datetime

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('practice', '0006_dates_into_stored_range'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='patient',
            name='patient_dob_after_1900',
        ),
        migrations.AddConstraint(
            model_name='coverage',
            constraint=models.CheckConstraint(condition=models.Q(('effective_from__gte', datetime.date(1900, 1, 1)), ('effective_from__lte', datetime.date(2200, 12, 31)), models.Q(('effective_to__isnull', True), models.Q(('effective_to__gte', datetime.date(1900, 1, 1)), ('effective_to__lte', datetime.date(2200, 12, 31))), _connector='OR')), name='coverage_dates_stored_range'),
        ),
        migrations.AddConstraint(
            model_name='patient',
            constraint=models.CheckConstraint(condition=models.Q(('date_of_birth__gte', datetime.date(1900, 1, 1)), ('date_of_birth__lte', datetime.date(2200, 12, 31))), name='patient_dob_stored_range'),
        ),
    ]

"""Issue 16: the CHECKs that keep every stored date in range (see 0007_dates_into_stored_range,
which brought the older rows into it first, in its own transaction)."""

import datetime

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("scheduling", "0007_dates_into_stored_range"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='appointment',
            constraint=models.CheckConstraint(condition=models.Q(('start__gte', datetime.datetime(1900, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)), ('start__lte', datetime.datetime(2201, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)), ('end__gte', datetime.datetime(1900, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)), ('end__lte', datetime.datetime(2201, 1, 1, 0, 0, tzinfo=datetime.timezone.utc))), name='appointment_stored_range'),
        ),
        migrations.AddConstraint(
            model_name='appointmentseries',
            constraint=models.CheckConstraint(condition=models.Q(('first_start__gte', datetime.datetime(1900, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)), ('first_start__lte', datetime.datetime(2201, 1, 1, 0, 0, tzinfo=datetime.timezone.utc))), name='appointment_series_stored_range'),
        ),
        migrations.AddConstraint(
            model_name='smartbookingjob',
            constraint=models.CheckConstraint(condition=models.Q(('request__earliest_date__isnull', True), models.Q(('request__earliest_date__gte', '1900-01-01'), ('request__earliest_date__lte', '2200-12-31')), _connector='OR'), name='smart_job_earliest_stored_range'),
        ),
        migrations.AddConstraint(
            model_name='smartbookingjob',
            constraint=models.CheckConstraint(condition=models.Q(('request__latest_date__isnull', True), models.Q(('request__latest_date__gte', '1900-01-01'), ('request__latest_date__lte', '2200-12-31')), _connector='OR'), name='smart_job_latest_stored_range'),
        ),
        migrations.AddConstraint(
            model_name='timeoff',
            constraint=models.CheckConstraint(condition=models.Q(('start__gte', datetime.datetime(1900, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)), ('start__lte', datetime.datetime(2201, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)), ('end__gte', datetime.datetime(1900, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)), ('end__lte', datetime.datetime(2201, 1, 1, 0, 0, tzinfo=datetime.timezone.utc))), name='time_off_stored_range'),
        ),
        migrations.AddConstraint(
            model_name='workinghours',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('effective_from__isnull', True), models.Q(('effective_from__gte', datetime.date(1900, 1, 1)), ('effective_from__lte', datetime.date(2200, 12, 31))), _connector='OR'), models.Q(('effective_to__isnull', True), models.Q(('effective_to__gte', datetime.date(1900, 1, 1)), ('effective_to__lte', datetime.date(2200, 12, 31))), _connector='OR')), name='working_hours_effective_stored_range'),
        ),
    ]

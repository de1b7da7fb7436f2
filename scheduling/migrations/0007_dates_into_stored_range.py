"""Issue 16: no stored date out of range. First the rows written before the bounds were
checked are brought into range without losing what they meant, then the CHECKs are added.

- time off: clamped to 1900-01-01 .. 2201-01-01 (a leave "from year 1" covers every bookable
  day as before); one lying wholly outside the range covers no bookable time and is deleted;
- working hours: an effective_from before 1900 or an effective_to after 2200 becomes open
  (NULL, the same meaning); the other ends are clamped;
- a series' first_start: clamped (the series' own visits carry the real times);
- a smart-booking job's window (earliest_date, latest_date): clamped, the original day kept in
  the job's error message, and a job not yet final ends failed with that reason (such a job
  was requeued for ever before);
- appointments: none can be out of range (the end overflowed before the INSERT, and the past
  and horizon rules refuse the rest); one that is would stop this migration on its CHECK,
  for an operator to look at, rather than be moved or deleted here.
"""

import datetime

from django.db import migrations, models
from django.db.models import Q
from django.utils import timezone

FIRST_DAY, LAST_DAY = datetime.date(1900, 1, 1), datetime.date(2200, 12, 31)
FIRST = datetime.datetime(1900, 1, 1, tzinfo=datetime.UTC)
END = datetime.datetime(2201, 1, 1, tzinfo=datetime.UTC)


def clean(apps, schema_editor):
    TimeOff = apps.get_model("scheduling", "TimeOff")
    WorkingHours = apps.get_model("scheduling", "WorkingHours")
    AppointmentSeries = apps.get_model("scheduling", "AppointmentSeries")
    SmartBookingJob = apps.get_model("scheduling", "SmartBookingJob")

    TimeOff.objects.filter(Q(end__lte=FIRST) | Q(start__gte=END)).delete()
    TimeOff.objects.filter(start__lt=FIRST).update(start=FIRST)
    TimeOff.objects.filter(end__gt=END).update(end=END)

    WorkingHours.objects.filter(effective_from__lt=FIRST_DAY).update(effective_from=None)
    WorkingHours.objects.filter(effective_to__gt=LAST_DAY).update(effective_to=None)
    WorkingHours.objects.filter(effective_from__gt=LAST_DAY).update(effective_from=LAST_DAY)
    WorkingHours.objects.filter(effective_to__lt=FIRST_DAY).update(effective_to=FIRST_DAY)

    AppointmentSeries.objects.filter(first_start__lt=FIRST).update(first_start=FIRST)
    AppointmentSeries.objects.filter(first_start__gt=END).update(first_start=END)

    first, last = FIRST_DAY.isoformat(), LAST_DAY.isoformat()
    outside = Q()
    for key in ("earliest_date", "latest_date"):
        outside |= Q(**{f"request__{key}__lt": first}) | Q(**{f"request__{key}__gt": last})
    for job in SmartBookingJob.objects.filter(outside):
        days = []
        for key in ("earliest_date", "latest_date"):
            value = job.request.get(key)
            if value is not None and not (isinstance(value, str) and first <= value <= last):
                days.append(str(value))
                job.request[key] = first if str(value) < first else last
        reason = f"The search window ({', '.join(days)}) was too far from today to book."
        if job.status not in ("completed", "failed", "cancelled"):
            job.status = "failed"
            job.completed_at = timezone.now()
        job.error_message = f"{job.error_message} {reason}".strip()
        job.save(update_fields=["request", "status", "completed_at", "error_message"])


class Migration(migrations.Migration):

    dependencies = [
        ('scheduling', '0006_appointment_overbook_permission'),
    ]

    operations = [migrations.RunPython(clean, migrations.RunPython.noop)]

from django.db import migrations

from tenants.models import work_due_triggers


class Migration(migrations.Migration):
    """The clinic is due for the beat's sweep of smart_bookings when a statement writes a row in a
    state it sweeps (tenants.models.WorkDue)."""

    dependencies = [
        ("scheduling", "0010_next_available_at"),
        ("tenants", "0004_work_due"),
    ]

    operations = [migrations.RunSQL(*work_due_triggers("scheduling_smartbookingjob", "smart_bookings", "queued", "running"))]

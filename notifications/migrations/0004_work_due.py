from django.db import migrations

from tenants.models import work_due_triggers


class Migration(migrations.Migration):
    """The clinic is due for the beat's sweep of notifications when a statement writes a row in a
    state it sweeps (tenants.models.WorkDue)."""

    dependencies = [
        ("notifications", "0003_queued_at"),
        ("tenants", "0004_work_due"),
    ]

    operations = [migrations.RunSQL(*work_due_triggers("notifications_notification", "notifications", "pending", "sending"))]

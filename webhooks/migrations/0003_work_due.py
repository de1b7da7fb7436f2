from django.db import migrations

from tenants.models import work_due_triggers


class Migration(migrations.Migration):
    """The clinic is due for the beat's sweep of webhooks when a statement writes a row in a
    state it sweeps (tenants.models.WorkDue)."""

    dependencies = [
        ("webhooks", "0002_secret_encrypted"),
        ("tenants", "0004_work_due"),
    ]

    operations = [migrations.RunSQL(*work_due_triggers("webhooks_webhookdelivery", "webhooks", "pending", "sending"))]

from django.db import migrations

from tenants.models import work_due_triggers


class Migration(migrations.Migration):
    """The clinic is due for the beat's sweep of waitlist_offers when a statement writes a row in a
    state it sweeps (tenants.models.WorkDue)."""

    dependencies = [
        ("waitlist", "0002_hold_messages_name_constraints"),
        ("tenants", "0004_work_due"),
    ]

    operations = [migrations.RunSQL(*work_due_triggers("waitlist_waitlistoffer", "waitlist_offers", "held"))]

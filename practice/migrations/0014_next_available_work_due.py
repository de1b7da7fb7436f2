from django.db import migrations

from tenants.models import work_due_triggers


class Migration(migrations.Migration):
    """A practitioner written (added, made active or inactive) makes the clinic due for the
    beat's next-available sweep (tenants.models.WorkDue)."""

    dependencies = [
        ("practice", "0013_clinicsettings_waitlist_hold_minutes"),
        ("tenants", "0005_work_due_any_row"),
    ]

    operations = [migrations.RunSQL(*work_due_triggers("practice_practitioner", "next_available"))]

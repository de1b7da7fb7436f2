from django.db import migrations

from tenants.models import work_due_triggers

# The tables whose writes can bring the clinic's next-available refresh forward
# (scheduling.next_available.refresh.next_available_next_due); practice.0014 adds the practitioners.
TABLES = (
    "scheduling_nextavailable",
    "scheduling_nextavailableat",
    "scheduling_workinghours",
    "scheduling_appointmenttype",
)


class Migration(migrations.Migration):
    """The clinic is due for the beat's next-available sweep when a statement writes a row of
    what its rows are computed from (tenants.models.WorkDue)."""

    dependencies = [
        ("scheduling", "0011_work_due"),
        ("tenants", "0005_work_due_any_row"),
    ]

    operations = [
        migrations.RunSQL(*work_due_triggers(table, "next_available")) for table in TABLES
    ]

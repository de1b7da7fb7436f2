from django.db import migrations

# The clinic is due for the beat's sweep of smart_bookings when a statement writes a row in a state
# it sweeps (public.clinic_work_changed(), tenants.models.WorkDue).
TRIGGERS = """
CREATE TRIGGER work_due_insert AFTER INSERT ON scheduling_smartbookingjob
REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
EXECUTE FUNCTION public.clinic_work_changed('smart_bookings', 'queued', 'running');
CREATE TRIGGER work_due_update AFTER UPDATE ON scheduling_smartbookingjob
REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
EXECUTE FUNCTION public.clinic_work_changed('smart_bookings', 'queued', 'running');
"""


class Migration(migrations.Migration):
    dependencies = [
        ("scheduling", "0010_next_available_at"),
        ("tenants", "0004_work_due"),
    ]

    operations = [
        migrations.RunSQL(
            TRIGGERS,
            reverse_sql="DROP TRIGGER work_due_insert ON scheduling_smartbookingjob; "
            "DROP TRIGGER work_due_update ON scheduling_smartbookingjob",
        ),
    ]

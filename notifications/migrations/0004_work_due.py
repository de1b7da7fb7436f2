from django.db import migrations

# The clinic is due for the beat's sweep of notifications when a statement writes a row in a state
# it sweeps (public.clinic_work_changed(), tenants.models.WorkDue).
TRIGGERS = """
CREATE TRIGGER work_due_insert AFTER INSERT ON notifications_notification
REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
EXECUTE FUNCTION public.clinic_work_changed('notifications', 'pending', 'sending');
CREATE TRIGGER work_due_update AFTER UPDATE ON notifications_notification
REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
EXECUTE FUNCTION public.clinic_work_changed('notifications', 'pending', 'sending');
"""


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0003_queued_at"),
        ("tenants", "0004_work_due"),
    ]

    operations = [
        migrations.RunSQL(
            TRIGGERS,
            reverse_sql="DROP TRIGGER work_due_insert ON notifications_notification; "
            "DROP TRIGGER work_due_update ON notifications_notification",
        ),
    ]

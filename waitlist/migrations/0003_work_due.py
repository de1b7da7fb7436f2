from django.db import migrations

# The clinic is due for the beat's sweep of waitlist_offers when a statement writes a row in a state
# it sweeps (public.clinic_work_changed(), tenants.models.WorkDue).
TRIGGERS = """
CREATE TRIGGER work_due_insert AFTER INSERT ON waitlist_waitlistoffer
REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
EXECUTE FUNCTION public.clinic_work_changed('waitlist_offers', 'held');
CREATE TRIGGER work_due_update AFTER UPDATE ON waitlist_waitlistoffer
REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
EXECUTE FUNCTION public.clinic_work_changed('waitlist_offers', 'held');
"""


class Migration(migrations.Migration):
    dependencies = [
        ("waitlist", "0002_hold_messages_name_constraints"),
        ("tenants", "0004_work_due"),
    ]

    operations = [
        migrations.RunSQL(
            TRIGGERS,
            reverse_sql="DROP TRIGGER work_due_insert ON waitlist_waitlistoffer; "
            "DROP TRIGGER work_due_update ON waitlist_waitlistoffer",
        ),
    ]

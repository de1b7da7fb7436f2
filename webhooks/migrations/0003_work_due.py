from django.db import migrations

# The clinic is due for the beat's sweep of webhooks when a statement writes a row in a state
# it sweeps (public.clinic_work_changed(), tenants.models.WorkDue).
TRIGGERS = """
CREATE TRIGGER work_due_insert AFTER INSERT ON webhooks_webhookdelivery
REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
EXECUTE FUNCTION public.clinic_work_changed('webhooks', 'pending', 'sending');
CREATE TRIGGER work_due_update AFTER UPDATE ON webhooks_webhookdelivery
REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
EXECUTE FUNCTION public.clinic_work_changed('webhooks', 'pending', 'sending');
"""


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0002_secret_encrypted"),
        ("tenants", "0004_work_due"),
    ]

    operations = [
        migrations.RunSQL(
            TRIGGERS,
            reverse_sql="DROP TRIGGER work_due_insert ON webhooks_webhookdelivery; "
            "DROP TRIGGER work_due_update ON webhooks_webhookdelivery",
        ),
    ]

from django.db import migrations, models

# Called by a trigger on each clinic's tables of background work (notifications, webhook
# deliveries, smart-booking jobs, waitlist offers; their apps' migrations create the
# triggers, AFTER INSERT and AFTER UPDATE, FOR EACH STATEMENT, the changed rows as `changed`).
# TG_ARGV[0] is the kind, TG_ARGV[1:] the states a row is swept in. A statement that wrote a
# row in one of them marks the clinic due now ('epoch'). The mark is read under FOR KEY SHARE:
# tenants.services.work_due_settle locks it FOR UPDATE before reading the clinic's rows, so it
# waits for every transaction that marked it and then sees their rows; transactions that mark
# a row already due do not wait for one another. (Migration 0005 replaces the row lock with an
# advisory lock on the clinic and kind, to the same effect for less.)
WORK_CHANGED = """
CREATE OR REPLACE FUNCTION public.clinic_work_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    due timestamptz;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM changed WHERE status = ANY (TG_ARGV[1:])) THEN
        RETURN NULL;
    END IF;
    SELECT w.due_at INTO due FROM public.tenants_workdue w
     WHERE w.schema_name = TG_TABLE_SCHEMA AND w.kind = TG_ARGV[0] FOR KEY SHARE;
    IF NOT FOUND THEN
        INSERT INTO public.tenants_workdue (schema_name, kind, due_at)
        VALUES (TG_TABLE_SCHEMA, TG_ARGV[0], 'epoch')
        ON CONFLICT (schema_name, kind) DO UPDATE SET due_at = 'epoch';
    ELSIF due > 'epoch' THEN
        UPDATE public.tenants_workdue SET due_at = 'epoch'
         WHERE schema_name = TG_TABLE_SCHEMA AND kind = TG_ARGV[0];
    END IF;
    RETURN NULL;
END
$$;
"""

# Clinics that exist before the index: each is visited once by each sweep, which settles it.
EVERY_CLINIC_DUE = """
INSERT INTO public.tenants_workdue (schema_name, kind, due_at)
SELECT c.schema_name, k.kind, 'epoch' FROM public.tenants_clinic c
 CROSS JOIN unnest(ARRAY['notifications', 'webhooks', 'smart_bookings', 'waitlist_offers']) k(kind)
 WHERE c.schema_name <> 'public'
ON CONFLICT DO NOTHING
"""


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0003_clinic_schema_state"),
    ]

    operations = [
        migrations.CreateModel(
            name="WorkDue",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("schema_name", models.CharField(max_length=63)),
                ("kind", models.CharField(max_length=32)),
                ("due_at", models.DateTimeField()),
            ],
            options={
                "indexes": [models.Index(fields=["kind", "due_at"], name="work_due_by_kind")],
                "constraints": [models.UniqueConstraint(fields=("schema_name", "kind"), name="work_due_one_per_kind")],
            },
        ),
        migrations.RunSQL(WORK_CHANGED, reverse_sql="DROP FUNCTION public.clinic_work_changed()"),
        migrations.RunSQL(EVERY_CLINIC_DUE, reverse_sql=migrations.RunSQL.noop),
    ]

from django.db import migrations

# public.clinic_work_changed() of migration 0004, changed twice:
# - kinds whose rows have no state to sweep (the next-available projection and what it is
#   computed from): a trigger passed no states (TG_NARGS = 1, the kind alone) marks the clinic
#   due when its statement wrote any row. Each trigger has its own compiled copy of the
#   function, so the branch that reads `status` is never planned for a table without it;
# - the writer no longer locks the clinic's row FOR KEY SHARE (a row lock writes the row's
#   header: a dirtied page, WAL, and a MultiXact when writers overlap) but takes a shared
#   advisory lock on (clinic, kind) until its transaction ends, in memory only
#   (bench/work_due_trigger.py). tenants.services.work_due_settle takes the same lock exclusively before it reads
#   the clinic's rows, so it still waits for every transaction that may have marked the clinic
#   and then sees their rows. The mark is read after the lock, by a later statement (a fresh
#   snapshot under READ COMMITTED), so it sees a settle that committed meanwhile.
WORK_CHANGED = """
CREATE OR REPLACE FUNCTION public.clinic_work_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    due timestamptz;
BEGIN
    IF TG_NARGS > 1 THEN
        IF NOT EXISTS (SELECT 1 FROM changed WHERE status = ANY (TG_ARGV[1:])) THEN
            RETURN NULL;
        END IF;
    ELSIF NOT EXISTS (SELECT 1 FROM changed) THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(hashtext(TG_TABLE_SCHEMA), hashtext(TG_ARGV[0]));
    SELECT w.due_at INTO due FROM public.tenants_workdue w
     WHERE w.schema_name = TG_TABLE_SCHEMA AND w.kind = TG_ARGV[0];
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

# Every existing clinic is visited once by the next-available sweep, which settles it.
EVERY_CLINIC_DUE = """
INSERT INTO public.tenants_workdue (schema_name, kind, due_at)
SELECT c.schema_name, 'next_available', 'epoch' FROM public.tenants_clinic c
 WHERE c.schema_name <> 'public'
ON CONFLICT DO NOTHING
"""

REMOVE_KIND = "DELETE FROM public.tenants_workdue WHERE kind = 'next_available'"


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0004_work_due"),
    ]

    operations = [
        migrations.RunSQL(WORK_CHANGED, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(EVERY_CLINIC_DUE, reverse_sql=REMOVE_KIND),
    ]

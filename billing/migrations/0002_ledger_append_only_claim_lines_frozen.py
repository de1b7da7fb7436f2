"""The invariants of billing that a CHECK cannot hold, as triggers: the money ledger is
append-only (a correction is a reversing entry), and a claim's lines never change once the claim
has left draft and ready (a submitted claim is never edited; a replacement is a new claim)."""

from django.db import migrations

# The functions live in `public`, as the audit trail's do: one definition for every clinic's
# schema, each trigger in the clinic's own table.
FUNCTIONS = """
CREATE OR REPLACE FUNCTION public.billing_ledger_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on %.% refused (post a reversing entry)',
        TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE OR REPLACE FUNCTION public.billing_claim_line_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    claim_status text;
BEGIN
    EXECUTE format('SELECT status FROM %I.billing_claim WHERE id = $1', TG_TABLE_SCHEMA)
        INTO claim_status
        USING CASE WHEN TG_OP = 'DELETE' THEN OLD.claim_id ELSE NEW.claim_id END;
    IF claim_status IS NOT NULL AND claim_status NOT IN ('draft', 'ready') THEN
        RAISE EXCEPTION 'claim lines are frozen once the claim is %: % refused', claim_status,
            TG_OP USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
"""

TRIGGERS = """
CREATE TRIGGER billing_ledger_append_only BEFORE UPDATE OR DELETE ON billing_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION public.billing_ledger_guard();
CREATE TRIGGER billing_claim_lines_frozen BEFORE INSERT OR UPDATE OR DELETE ON billing_claimline
    FOR EACH ROW EXECUTE FUNCTION public.billing_claim_line_guard();
"""

DROP_TRIGGERS = """
DROP TRIGGER billing_ledger_append_only ON billing_ledgerentry;
DROP TRIGGER billing_claim_lines_frozen ON billing_claimline;
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_billing")]

    operations = [
        migrations.RunSQL(FUNCTIONS, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(TRIGGERS, reverse_sql=DROP_TRIGGERS),
    ]

"""Open balances per charge and party, derived from the ledger by a trigger: the A/R aging
sums the open rows (a partial index) instead of the whole ledger. The table is the trigger's
alone: another trigger refuses a write that does not come from the ledger's insert."""

import django.db.models.deletion
import django.db.models.functions.comparison
from django.db import migrations, models


# Functions in `public`, as 0002's: each clinic's trigger names its own schema's tables.
FUNCTIONS = """
CREATE OR REPLACE FUNCTION public.billing_charge_balance_follow() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.charge_id IS NULL THEN
        -- money on the account itself (a payment not applied to a charge): its own row, aged
        -- from the entry it reverses, else its own date
        EXECUTE format(
            'INSERT INTO %I.billing_chargebalance '
            '(charge_id, patient_id, party, payer_id, age_date, amount) '
            'VALUES (NULL, $1, $2, $3, COALESCE('
            '(SELECT posted_on FROM %I.billing_ledgerentry WHERE id = $4), $5), $6)',
            TG_TABLE_SCHEMA, TG_TABLE_SCHEMA)
            USING NEW.patient_id, NEW.party, NEW.payer_id, NEW.reverses_id, NEW.posted_on,
                NEW.amount;
    ELSE
        EXECUTE format(
            'INSERT INTO %I.billing_chargebalance AS b '
            '(charge_id, patient_id, party, payer_id, age_date, amount) '
            'SELECT c.id, $2, $3, $4, c.service_date, $5 FROM %I.billing_charge c '
            'WHERE c.id = $1 '
            'ON CONFLICT (charge_id, party, COALESCE(payer_id, 0)) '
            'DO UPDATE SET amount = b.amount + EXCLUDED.amount',
            TG_TABLE_SCHEMA, TG_TABLE_SCHEMA)
            USING NEW.charge_id, NEW.patient_id, NEW.party, NEW.payer_id, NEW.amount;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION public.billing_charge_balance_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'charge balances are derived from the ledger: % on %.% refused',
            TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
"""

# What the ledger holds already, then the triggers that keep it.
BACKFILL = """
INSERT INTO billing_chargebalance (charge_id, patient_id, party, payer_id, age_date, amount)
SELECT e.charge_id, e.patient_id, e.party, e.payer_id, c.service_date, SUM(e.amount)
FROM billing_ledgerentry e JOIN billing_charge c ON c.id = e.charge_id
GROUP BY e.charge_id, e.patient_id, e.party, e.payer_id, c.service_date;
INSERT INTO billing_chargebalance (charge_id, patient_id, party, payer_id, age_date, amount)
SELECT NULL, e.patient_id, e.party, e.payer_id, e.posted_on, e.amount
FROM billing_ledgerentry e WHERE e.charge_id IS NULL;
"""

TRIGGERS = """
CREATE TRIGGER billing_charge_balance_follows_ledger AFTER INSERT ON billing_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION public.billing_charge_balance_follow();
CREATE TRIGGER billing_charge_balance_derived BEFORE INSERT OR UPDATE OR DELETE
    ON billing_chargebalance FOR EACH ROW EXECUTE FUNCTION public.billing_charge_balance_guard();
"""

DROP_TRIGGERS = """
DROP TRIGGER billing_charge_balance_follows_ledger ON billing_ledgerentry;
DROP TRIGGER billing_charge_balance_derived ON billing_chargebalance;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_billing_profile_credential_modifiers"),
        ("practice", "0009_clinic_contact_and_location_phone"),
    ]

    operations = [
        migrations.CreateModel(
            name="ChargeBalance",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "party",
                    models.CharField(
                        choices=[("payer", "Payer"), ("patient", "Patient")], max_length=7
                    ),
                ),
                (
                    "age_date",
                    models.DateField(
                        help_text="The charge's service date (else the entry's date)."
                    ),
                ),
                ("amount", models.DecimalField(decimal_places=2, max_digits=12)),
                (
                    "charge",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="balances",
                        to="billing.charge",
                    ),
                ),
                (
                    "patient",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="practice.patient",
                    ),
                ),
                (
                    "payer",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="practice.payer",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(
                        condition=models.Q(("amount", 0), _negated=True),
                        fields=["age_date"],
                        include=("party", "payer", "patient", "amount"),
                        name="charge_balance_open",
                    )
                ],
                "constraints": [
                    models.UniqueConstraint(
                        models.F("charge"),
                        models.F("party"),
                        django.db.models.functions.comparison.Coalesce("payer", 0),
                        name="charge_balance_per_party",
                    )
                ],
            },
        ),
        migrations.RunSQL(FUNCTIONS, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(TRIGGERS, reverse_sql=DROP_TRIGGERS),
    ]

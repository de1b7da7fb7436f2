"""The A/R rolled up, kept by the ledger: per (party, payer, age date) the sum of the open
balances (`billing_arday`) and per patient their total and how many balances are open
(`billing_arpatient`), so the A/R aging reads a few thousand rows instead of every open charge.

One statement trigger on the ledger's inserts (a posting's COPY is one statement) does both,
after the row trigger of 0004 has brought `billing_chargebalance` up to date:

- `billing_arday` gets the statement's entries summed per key, added to the rows in key order
  (`INSERT ... ORDER BY ... ON CONFLICT DO UPDATE SET amount = amount + delta`): the delta is
  applied under the row's lock, so concurrent postings add up; one statement takes its rows in
  one order, so two postings' COPYs cannot deadlock on them.
- `billing_arpatient`: each patient of the statement has their row locked (inserted or
  touched), then recounted from their open balances by a later statement of the function,
  whose snapshot (READ COMMITTED: one per statement) sees every transaction that held the
  row before: the last to hold it counts everything committed.

Both tables are the triggers' alone: 0004's guard refuses any other write."""

import django.db.models.deletion
import django.db.models.functions.comparison
from django.db import migrations, models


# In `public`, as 0002's and 0004's: each clinic's trigger names its own schema's tables.
FUNCTION = """
CREATE OR REPLACE FUNCTION public.billing_ar_rollup_follow() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- the age date as 0004's row trigger gives it: the charge's service date, else (money on
    -- the account) the date of the entry reversed, else the entry's own
    EXECUTE format(
        'INSERT INTO %1$I.billing_arday AS d (party, payer_id, age_date, amount) '
        'SELECT n.party, n.payer_id, CASE WHEN n.charge_id IS NOT NULL THEN c.service_date '
        '    ELSE COALESCE(r.posted_on, n.posted_on) END, SUM(n.amount) '
        'FROM added n '
        'LEFT JOIN %1$I.billing_charge c ON c.id = n.charge_id '
        'LEFT JOIN %1$I.billing_ledgerentry r ON r.id = n.reverses_id AND n.charge_id IS NULL '
        'GROUP BY 1, 2, 3 ORDER BY 1, COALESCE(n.payer_id, 0), 3 '
        'ON CONFLICT (party, COALESCE(payer_id, 0), age_date) '
        'DO UPDATE SET amount = d.amount + EXCLUDED.amount',
        TG_TABLE_SCHEMA);
    EXECUTE format(
        'INSERT INTO %1$I.billing_arpatient AS p (patient_id, amount, open_balances) '
        'SELECT DISTINCT n.patient_id, 0, 0 FROM added n ORDER BY 1 '
        'ON CONFLICT (patient_id) DO UPDATE SET amount = p.amount',
        TG_TABLE_SCHEMA);
    EXECUTE format(
        'UPDATE %1$I.billing_arpatient p SET amount = o.amount, open_balances = o.open '
        'FROM (SELECT n.patient_id, COALESCE(SUM(b.amount), 0) AS amount, COUNT(b.id) AS open '
        '      FROM (SELECT DISTINCT patient_id FROM added) n '
        '      LEFT JOIN %1$I.billing_chargebalance b '
        '          ON b.patient_id = n.patient_id AND b.amount <> 0 '
        '      GROUP BY n.patient_id) o '
        'WHERE p.patient_id = o.patient_id',
        TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;
"""

# What the balances hold already, then the triggers that keep the rollup.
BACKFILL = """
INSERT INTO billing_arday (party, payer_id, age_date, amount)
SELECT party, payer_id, age_date, SUM(amount) FROM billing_chargebalance
GROUP BY party, payer_id, age_date;
INSERT INTO billing_arpatient (patient_id, amount, open_balances)
SELECT patient_id, SUM(amount), COUNT(*) FILTER (WHERE amount <> 0) FROM billing_chargebalance
GROUP BY patient_id;
"""

TRIGGERS = """
CREATE TRIGGER billing_ar_rollup_follows_ledger AFTER INSERT ON billing_ledgerentry
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION public.billing_ar_rollup_follow();
CREATE TRIGGER billing_ar_day_derived BEFORE INSERT OR UPDATE OR DELETE
    ON billing_arday FOR EACH ROW EXECUTE FUNCTION public.billing_charge_balance_guard();
CREATE TRIGGER billing_ar_patient_derived BEFORE INSERT OR UPDATE OR DELETE
    ON billing_arpatient FOR EACH ROW EXECUTE FUNCTION public.billing_charge_balance_guard();
"""

DROP_TRIGGERS = """
DROP TRIGGER billing_ar_rollup_follows_ledger ON billing_ledgerentry;
DROP TRIGGER billing_ar_day_derived ON billing_arday;
DROP TRIGGER billing_ar_patient_derived ON billing_arpatient;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0006_supervising_provider"),
        ("practice", "0011_intake_insurance_guardians_consents"),
    ]

    operations = [
        migrations.CreateModel(
            name="ArDay",
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
                ("age_date", models.DateField()),
                ("amount", models.DecimalField(decimal_places=2, max_digits=12)),
            ],
        ),
        migrations.CreateModel(
            name="ArPatient",
            fields=[
                (
                    "patient",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="practice.patient",
                    ),
                ),
                ("amount", models.DecimalField(decimal_places=2, max_digits=12)),
                ("open_balances", models.PositiveIntegerField(default=0)),
            ],
        ),
        migrations.AddIndex(
            model_name="chargebalance",
            index=models.Index(
                condition=models.Q(("amount", 0), _negated=True),
                fields=["patient"],
                include=("age_date", "amount"),
                name="charge_balance_open_patient",
            ),
        ),
        migrations.AddField(
            model_name="arday",
            name="payer",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="practice.payer",
            ),
        ),
        migrations.AddIndex(
            model_name="arpatient",
            index=models.Index(
                models.OrderBy(models.F("amount"), descending=True),
                models.F("patient"),
                condition=models.Q(("open_balances__gt", 0)),
                name="ar_patient_owing",
            ),
        ),
        migrations.AddConstraint(
            model_name="arday",
            constraint=models.UniqueConstraint(
                models.F("party"),
                django.db.models.functions.comparison.Coalesce("payer", 0),
                models.F("age_date"),
                name="ar_day_per_party",
            ),
        ),
        migrations.RunSQL(FUNCTION, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(TRIGGERS, reverse_sql=DROP_TRIGGERS),
    ]

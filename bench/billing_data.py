"""The billing scenario's data in the bench clinic: an episode per patient seen, two charges per
seeded visit (97153 and 97155: 100,000 charges on the 50,000 visits), each posted to the
ledger, and four in five of those older than 30 days paid by the payer (payment, CO-45
write-off, PR-2 coinsurance moved to the patient, nine in ten of them paid by the patient), so
the A/R holds what a clinic's does: most charges settled, about a quarter open across every
aging bucket.

Seeded once (a seed step: bench/seed.py), by bulk INSERTs: the ledger's rows with the
triggers off for the load (`session_replication_role = replica`), then the per-charge open
balances (`billing_chargebalance`) filled by the same grouped sum migration 0004's backfill
runs, and the A/R rollup (`billing_arday`, `billing_arpatient`) summed again from those balances
as migration 0007's backfill does, then the triggers on again, so the tables are what the
triggers would have written.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

CODES = ("97153", "97155")
CHARGE_NOTE = "bench charge"


def charges_count() -> int:
    from billing.models import Charge

    return Charge.objects.filter(authorization_number=CHARGE_NOTE).count()


def charges_seed(have: int, missing: int) -> None:
    from django.db import connection, transaction

    from billing.models import Charge, Episode, EpisodeDiagnosis
    from practice.models import Coverage, ServiceCode
    from scheduling.models import Appointment

    with transaction.atomic():
        codes = []
        for code in CODES:
            row, _ = ServiceCode.objects.get_or_create(
                code=code, defaults={"label": f"Bench {code}", "unit_minutes": 15}
            )
            codes.append(row)
        # Insured patients' charges go to their coverage's payer; the others' to one shared
        # bench coverage (a charge's payer comes with a coverage: a CHECK), so the A/R by payer
        # spreads over the seeded payers as a clinic's would.
        coverages = {
            c.patient_id: c for c in Coverage.objects.select_related("payer").order_by("-pk")
        }
        shared = next(iter(coverages.values()), None)
        if shared is None:
            raise RuntimeError("the billing step needs the 'payers and coverages' step first")
        patients = set(Appointment.objects.values_list("patient_id", flat=True))
        have_episode = set(Episode.objects.values_list("patient_id", flat=True))
        Episode.objects.bulk_create(
            [
                Episode(patient_id=p, title="Bench episode", start_date=date(2020, 1, 1))
                for p in sorted(patients - have_episode)
            ],
            batch_size=5000,
        )
        episodes = dict(Episode.objects.values_list("patient_id", "pk"))
        EpisodeDiagnosis.objects.bulk_create(
            [
                EpisodeDiagnosis(episode_id=e, rank=1, code="F84.0")
                for p, e in episodes.items()
                if p not in have_episode
            ],
            batch_size=5000,
        )
        charged = set(
            Charge.objects.filter(authorization_number=CHARGE_NOTE).values_list(
                "appointment_id", "service_code_id"
            )
        )
        visits = Appointment.objects.order_by("start", "id").values_list(
            "pk", "patient_id", "practitioner_id", "start"
        )
        made = []
        for pk, patient, practitioner, start in visits:
            for code in codes:
                if len(made) >= missing:
                    break
                if (pk, code.pk) in charged:
                    continue
                made.append(
                    Charge(
                        appointment_id=pk,
                        patient_id=patient,
                        episode_id=episodes[patient],
                        coverage=(cover := coverages.get(patient, shared)),
                        payer_id=cover.payer_id,
                        service_code=code,
                        service_date=start.date(),
                        units=4,
                        place_of_service="11",
                        diagnosis_pointers=[1],
                        amount=Decimal("200.00"),
                        expected_allowed=Decimal("160.00"),
                        rendering_id=practitioner,
                        authorization_number=CHARGE_NOTE,
                    )  # fmt: skip
                )
        Charge.objects.bulk_create(made, batch_size=5000)
        first = min(c.pk for c in made) if made else 0
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(LEDGER_SQL, {"first": first})
            cursor.execute(BALANCES_SQL, {"first": first})
            for statement in filter(str.strip, ROLLUP_SQL.split(";")):
                cursor.execute(statement)
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")
            cursor.execute(
                "ANALYZE billing_charge, billing_ledgerentry, billing_chargebalance, "
                "billing_arday, billing_arpatient"
            )


# Every charge posted to its payer; paid ones (four in five older than 30 days): payment 120,
# CO-45 40, PR-2 40 moved to the patient (the payer owes nothing more), which most patients
# (nine in ten) then pay: what stays open is what a clinic's A/R holds (a quarter of charges).
LEDGER_SQL = """
WITH c AS (
    SELECT id, patient_id, payer_id, amount, service_date,
        (service_date < CURRENT_DATE - 30 AND id %% 5 <> 0) AS paid
    FROM billing_charge WHERE id >= %(first)s AND authorization_number = 'bench charge'
)
INSERT INTO billing_ledgerentry (patient_id, party, payer_id, charge_id, kind, amount,
    group_code, reason_code, remark_codes, memo, posted_on, created_at)
SELECT patient_id, 'payer', payer_id, id, 'charge', amount, '', '', '{}'::varchar[], 'bench',
    service_date, now() FROM c
UNION ALL
SELECT patient_id, 'payer', payer_id, id, 'payment', -120.00, '', '', '{}'::varchar[], 'bench',
    service_date + 20, now() FROM c WHERE paid
UNION ALL
SELECT patient_id, 'payer', payer_id, id, 'adjustment', -40.00, 'CO', '45', '{}'::varchar[],
    'bench', service_date + 20, now() FROM c WHERE paid
UNION ALL
SELECT patient_id, 'payer', payer_id, id, 'transfer', -40.00, 'PR', '2', '{}'::varchar[], 'bench',
    service_date + 20, now() FROM c WHERE paid
UNION ALL
SELECT patient_id, 'patient', NULL, id, 'transfer', 40.00, 'PR', '2', '{}'::varchar[], 'bench',
    service_date + 20, now() FROM c WHERE paid
UNION ALL
SELECT patient_id, 'patient', NULL, id, 'payment', -40.00, '', '', '{}'::varchar[], 'bench',
    service_date + 25, now() FROM c WHERE paid AND id %% 10 <> 1
"""

BALANCES_SQL = """
INSERT INTO billing_chargebalance (charge_id, patient_id, party, payer_id, age_date, amount)
SELECT e.charge_id, e.patient_id, e.party, e.payer_id, c.service_date, SUM(e.amount)
FROM billing_ledgerentry e JOIN billing_charge c ON c.id = e.charge_id
WHERE c.id >= %(first)s AND c.authorization_number = 'bench charge'
GROUP BY e.charge_id, e.patient_id, e.party, e.payer_id, c.service_date
"""

# The A/R rollup from the balances, whole (the triggers that keep it are off for the load).
ROLLUP_SQL = """
DELETE FROM billing_arday;
DELETE FROM billing_arpatient;
INSERT INTO billing_arday (party, payer_id, age_date, amount)
SELECT party, payer_id, age_date, SUM(amount) FROM billing_chargebalance
GROUP BY party, payer_id, age_date;
INSERT INTO billing_arpatient (patient_id, amount, open_balances)
SELECT patient_id, SUM(amount), COUNT(*) FILTER (WHERE amount <> 0) FROM billing_chargebalance
GROUP BY patient_id;
"""


# The paid charges on claims: one paid claim per seeded visit older than 30 days whose charges
# are open (its two charges, lines 1 and 2), so the claims list pages through what a clinic of
# 100,000 charges holds (~23,000 claims, ~46,000 lines). Inserted as drafts, then paid (a
# submitted claim's lines are frozen by a trigger); marked by their payer claim number
# "BENCH<visit id>".
CLAIMS_SQL = """
INSERT INTO billing_claim (patient_id, payer_id, coverage_id, episode_id, rendering_id,
    supervising_npi, status, frequency, total_charge, payer_claim_number, findings,
    status_reason, created_at, updated_at, submitted_at)
SELECT patient_id, payer_id, coverage_id, episode_id, rendering_id, '', 'draft', '1',
    SUM(amount), 'BENCH' || appointment_id, '[]'::jsonb, '', now(), now(),
    (MIN(service_date) + 1)::timestamptz
FROM billing_charge
WHERE authorization_number = 'bench charge' AND status = 'open'
    AND service_date < CURRENT_DATE - 30 AND coverage_id IS NOT NULL
GROUP BY appointment_id, patient_id, payer_id, coverage_id, episode_id, rendering_id
ORDER BY MIN(service_date), appointment_id;
INSERT INTO billing_claimline (claim_id, charge_id, number, amount, units)
SELECT cl.id, ch.id, row_number() OVER (PARTITION BY cl.id ORDER BY ch.id), ch.amount, ch.units
FROM billing_claim cl
JOIN billing_charge ch ON cl.payer_claim_number = 'BENCH' || ch.appointment_id
WHERE cl.payer_claim_number LIKE 'BENCH%%' AND ch.authorization_number = 'bench charge'
    AND ch.status = 'open' AND ch.service_date < CURRENT_DATE - 30
    AND ch.payer_id = cl.payer_id;
UPDATE billing_charge SET status = 'billed'
WHERE id IN (SELECT charge_id FROM billing_claimline) AND status = 'open';
UPDATE billing_claim SET status = 'paid'
WHERE payer_claim_number LIKE 'BENCH%%' AND status = 'draft';
"""


def claims_count() -> int:
    """1 once the bench claims are there (the step is all or nothing)."""
    from billing.models import Claim

    return int(Claim.objects.filter(payer_claim_number__startswith="BENCH").exists())


def claims_seed(have: int, missing: int) -> None:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        for statement in filter(str.strip, CLAIMS_SQL.split(";")):
            cursor.execute(statement)
    # Outside the transaction: the visibility map lets the list's count read the index alone,
    # as autovacuum would leave it in a clinic.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE billing_claim, billing_claimline, billing_charge")

"""The A/R rollup (`ArDay` per party, payer and age date; `ArPatient` per patient) is the ledger
rolled up: after a mix of charges, 835 postings (one COPY), payments with and without charges to
apply to, refunds, transfers, adjustments and reversals, it equals a from-scratch sum of the
entries; concurrent postings on the same days and patients add up without a deadlock; nothing
but the ledger's trigger writes it; and the A/R aging reads it."""

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from billing import ledger, payments, reports
from billing.models import ArDay, ArPatient, LedgerEntry
from billing.posting import remittance_post
from billing.tests import factories
from billing.tests.remit import Pay, charge_of, claim_payment, paying, remittance_835
from billing.tests.rollup import rollup_from_scratch, rollup_kept
from practice.models import Patient
from tests.fixtures import in_clinic

D = Decimal
AS_OF = date(2026, 6, 30)


def _claim(visit: factories.Visit, charge):
    from billing.models import Claim, ClaimLine

    payer = charge.payer
    if len(payer.edi_payer_id) < 10:  # TRN03 is ten characters
        payer.edi_payer_id = f"1{payer.pk:09d}"
        payer.save(update_fields=["edi_payer_id"])
    claim = Claim.objects.create(
        patient=charge.patient, payer=payer, coverage=visit.coverage, episode=charge.episode,
        rendering=charge.rendering, total_charge=charge.amount,
    )  # fmt: skip
    ClaimLine.objects.create(
        claim=claim, charge=charge, number=1, amount=charge.amount, units=charge.units
    )
    Claim.objects.filter(pk=claim.pk).update(status="submitted")
    claim.refresh_from_db()
    return claim


def test_the_rollup_equals_the_ledger_after_every_kind_of_entry(acme):
    with in_clinic(acme):
        visits = [factories.billable_visit() for _ in range(3)]
        charges = []
        for n, visit in enumerate(visits):
            for age, insured in ((10, True), (45, True), (100, False), (200, True)):
                charges.append(
                    charge_of(
                        visit, f"R{n}{age:03d}", "200.00", insured=insured,
                        service_date=AS_OF - timedelta(days=age),
                    )
                )  # fmt: skip
        assert rollup_kept() == rollup_from_scratch()
        insured = [c for c in charges if c.payer_id]
        # an 835 per claim (its entries one COPY): paid, CO-45, PR-2 to the patient
        claims = [_claim(visits[i // 3], c) for i, c in enumerate(insured[:6])]
        for claim in claims[:4]:
            remittance_post(
                text=paying(claim, [Pay("120.00", (("CO", "45", "40.00"), ("PR", "2", "40.00")))])
            )
        # a reversal of one of them (CLP02 = 22)
        reversal = claim_payment(claims[0], [Pay("200.00", ())], status="22", sign=-1)
        remittance_post(text=remittance_835([reversal], payer_id=claims[0].payer.edi_payer_id))
        patient = visits[0].patient
        taken = payments.payment_take(patient=patient, amount=D("900.00"), method="cash")
        payments.payment_refund(payment=taken, amount=D("25.00"))
        payments.responsibility_move(charge=insured[7], amount=D("30.00"), to="patient")
        payments.adjustment_post(charge=charges[6], amount=D("15.00"), party="patient")
        credit = LedgerEntry.objects.filter(charge__isnull=True).order_by("pk").first()
        assert credit is not None  # the payment's part no charge took: money on the account
        ledger.entry_reverse(entry=credit)
        days, patients = rollup_kept()
        assert (days, patients) == rollup_from_scratch()
        assert len(patients) == 3 and {key[0] for key in days} == {"payer", "patient"}
        # the aging read from the rollup is Σ ledger, and by patient the pages add up
        everything = sum(LedgerEntry.objects.values_list("amount", flat=True), D(0))
        assert reports.ar_aging(as_of=AS_OF).total == everything
        by_patient = reports.ar_aging(by="patient", as_of=AS_OF)
        assert sum((row.total for row in by_patient.rows), D(0)) == everything
        assert [row.key for row in reports.ar_aging_rows(by="patient", as_of=AS_OF)[1:3]] == [
            row.key for row in by_patient.rows[1:3]
        ]
        # a page by patient, as the API reads it (count, rows, totals): two statements
        with CaptureQueriesContext(connection) as read:
            rows = reports.ar_aging_rows(by="patient", as_of=AS_OF)
            count, page, totals = len(rows), rows[0:2], rows.totals()
        assert len(read.captured_queries) == 2, [q["sql"] for q in read.captured_queries]
        assert count == len(by_patient.rows) == 3
        assert totals == reports.ar_aging_totals(as_of=AS_OF) == by_patient.totals
        assert page == list(by_patient.rows[0:2])
        assert page[0].label == Patient.objects.get(pk=page[0].key).full_name


@pytest.mark.parametrize(
    ("table", "statement"),
    [
        ("billing_arday", "UPDATE {} SET amount = 0"),
        ("billing_arpatient", "UPDATE {} SET open_balances = 0"),
        ("billing_arpatient", "DELETE FROM {}"),
        (
            "billing_arday",
            "INSERT INTO {} (party, age_date, amount) VALUES ('patient', '2026-01-01', 1)",
        ),
    ],
)
def test_only_the_ledger_writes_the_rollup(acme, table, statement):
    with in_clinic(acme):
        visit = factories.billable_visit()
        charge_of(visit, "R9999", "80.00")
        before = rollup_kept()
        with pytest.raises(DatabaseError, match="derived from the ledger"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(statement.format(table))
        assert rollup_kept() == before == rollup_from_scratch()


THREADS = 4
ROUNDS = 8


def test_concurrent_postings_on_the_same_days_and_patients_add_up_without_deadlock(
    committed_acme,
):
    """Four threads each post, in one statement per transaction, to two patients' charges on
    the same three days (the rows of `ArDay` and `ArPatient` they share), half of them in the
    reverse order: every delta lands and none deadlocks (the trigger takes rows in key
    order)."""
    acme = committed_acme
    days = [AS_OF - timedelta(days=age) for age in (5, 50, 150)]
    with in_clinic(acme):
        visits = [factories.billable_visit(), factories.billable_visit()]
        own = {
            t: [
                charge_of(v, f"C{t}{p}{i}0", "500.00", service_date=day)
                for p, v in enumerate(visits)
                for i, day in enumerate(days)
            ]
            for t in range(THREADS)
        }
        patients = [v.patient.pk for v in visits]
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def post(t: int) -> None:
        try:
            with in_clinic(acme):
                start.wait(timeout=60)
                for _ in range(ROUNDS):
                    charges = own[t] if t % 2 else list(reversed(own[t]))
                    with transaction.atomic():
                        LedgerEntry.objects.bulk_create(
                            LedgerEntry(
                                patient_id=c.patient_id,
                                party="patient",
                                charge=c,
                                kind="adjustment",
                                amount=D("-1.00"),
                                reason_code="45",
                                group_code="CO",
                                posted_on=AS_OF,
                            )  # fmt: skip
                            for c in charges
                        )
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with in_clinic(acme):
        kept = rollup_kept()
        assert kept == rollup_from_scratch()
        for day in days:
            # 2 patients × 4 threads × 500.00 charged, less 8 rounds of 1.00 each
            assert ArDay.objects.get(party="patient", payer=None, age_date=day).amount == D(
                2 * THREADS * 500 - 2 * THREADS * ROUNDS
            )
        for pk in patients:
            row = ArPatient.objects.get(patient_id=pk)
            assert (row.amount, row.open_balances) == (
                D(3 * THREADS * (500 - ROUNDS)),
                3 * THREADS,
            )

"""Patients' payments: allocation oldest first with the rest as credit, copays from the
coverage, online payments through the processor double, refunds never beyond the payment,
transfers between payer and patient, and one payment per Idempotency-Key."""

import threading
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection

from billing import ledger, payments
from billing.models import LedgerEntry, Payment
from billing.tests import factories
from billing.tests.remit import charge_of
from tests.fixtures import in_clinic

D = Decimal


def _owed(charge) -> Decimal:
    return ledger.charge_balance(charge=charge).patient


def test_a_payment_pays_the_oldest_charges_first_and_the_rest_is_credit(acme):
    with in_clinic(acme):
        visit = factories.billable_visit()
        newer = charge_of(visit, "97155", "80.00", service_date=date(2026, 11, 20))
        older = charge_of(visit, "97156", "50.00", service_date=date(2026, 11, 2))
        payment = payments.payment_take(patient=visit.patient, amount=D("100.00"), method="cash")
        assert (_owed(older), _owed(newer)) == (D("0.00"), D("30.00"))
        payments.payment_take(patient=visit.patient, amount=D("45.00"), method="card")
        assert _owed(newer) == D(0)
        credit = LedgerEntry.objects.get(charge__isnull=True)
        assert credit.amount == D("-15.00")
        balance = ledger.patient_balance(patient=visit.patient)
        assert balance.patient == D("-15.00")  # a credit on the account
        assert sum(e.amount for e in LedgerEntry.objects.filter(payment=payment)) == -payment.amount


def test_a_copay_is_the_coverages_and_taken_once_per_visit(acme):
    with in_clinic(acme):
        visit = factories.billable_visit()
        visit.coverage.copay_amount = D("25.00")
        visit.coverage.save(update_fields=["copay_amount"])
        copay = payments.copay_take(appointment=visit.appointment, method="card")
        again = payments.copay_take(appointment=visit.appointment, method="cash")
        assert again.pk == copay.pk
        assert (copay.kind, copay.amount, copay.appointment) == (
            "copay",
            D("25.00"),
            visit.appointment,
        )
        assert ledger.patient_balance(patient=visit.patient).patient == D("-25.00")


def test_no_copay_is_a_409(acme):
    with in_clinic(acme):
        visit = factories.billable_visit()
        with pytest.raises(payments.NoCopayError):
            payments.copay_take(appointment=visit.appointment, method="card")
        assert Payment.objects.count() == 0


def test_an_online_payment_goes_through_the_processor_double(acme):
    with in_clinic(acme):
        visit = factories.billable_visit()
        charge_of(visit, "97155", "80.00")
        paid = payments.payment_online(
            patient=visit.patient, amount=D("80.00"), token="tok_visa", currency="USD",
            idempotency_key="k-online-1",
        )  # fmt: skip
        assert paid.processor == "fake" and paid.processor_id.startswith("fake_ch_")
        assert ledger.patient_balance(patient=visit.patient).patient == D(0)
        with pytest.raises(payments.PaymentDeclinedError):
            payments.payment_online(
                patient=visit.patient, amount=D("5.00"), token="tok_decline", currency="USD",
                idempotency_key="k-online-2",
            )  # fmt: skip
        failed = Payment.objects.get(status="failed")
        assert not failed.ledger.exists()  # a decline moves no money


def test_a_refund_undoes_the_credit_first_and_never_exceeds_the_payment(acme):
    with in_clinic(acme):
        visit = factories.billable_visit()
        charge = charge_of(visit, "97155", "80.00")
        payment = payments.payment_take(patient=visit.patient, amount=D("100.00"), method="cash")
        payments.payment_refund(payment=payment, amount=D("30.00"))
        # the 20.00 credit refunded first, then 10.00 of the charge is owed again
        assert _owed(charge) == D("10.00")
        assert ledger.patient_balance(patient=visit.patient).patient == D("10.00")
        with pytest.raises(payments.RefundExceedsPaymentError) as refused:
            payments.payment_refund(payment=payment, amount=D("70.01"))
        assert refused.value.extra["errors"]["amount"]
        payments.payment_refund(payment=payment, amount=D("70.00"))
        assert ledger.patient_balance(patient=visit.patient).patient == D("80.00")
        assert Payment.objects.filter(kind="refund").count() == 2


def test_two_concurrent_refunds_cannot_both_take_the_last_of_a_payment(committed_acme):
    with in_clinic(committed_acme):
        visit = factories.billable_visit()
        payment = payments.payment_take(patient=visit.patient, amount=D("50.00"), method="cash")
    barrier = threading.Barrier(2)
    outcomes: list = []

    def run() -> None:
        try:
            with in_clinic(committed_acme):
                barrier.wait(timeout=30)
                payments.payment_refund(payment=payment, amount=D("40.00"))
                outcomes.append("ok")
        except payments.RefundExceedsPaymentError:
            outcomes.append("409")
        except Exception as error:  # noqa: BLE001
            outcomes.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["409", "ok"], outcomes
    with in_clinic(committed_acme):
        assert Payment.objects.filter(kind="refund").count() == 1


def test_the_same_idempotency_key_takes_one_payment_even_concurrently(committed_acme):
    with in_clinic(committed_acme):
        visit = factories.billable_visit()
    barrier = threading.Barrier(2)
    outcomes: list = []

    def run() -> None:
        try:
            with in_clinic(committed_acme):
                barrier.wait(timeout=30)
                outcomes.append(
                    payments.payment_take(
                        patient=visit.patient, amount=D("20.00"), method="cash",
                        idempotency_key="desk-1",
                    ).pk
                )  # fmt: skip
        except Exception as error:  # noqa: BLE001
            outcomes.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(outcomes)) == 1 and isinstance(outcomes[0], int), outcomes
    with in_clinic(committed_acme):
        assert Payment.objects.count() == 1
        assert ledger.patient_balance(patient=visit.patient).patient == D("-20.00")


def test_a_biller_moves_a_charge_between_payer_and_patient_within_what_is_owed(acme):
    with in_clinic(acme):
        visit = factories.billable_visit()
        charge = charge_of(visit, "97155", "80.00", insured=True)
        payments.responsibility_move(charge=charge, amount=D("30.00"), to="patient")
        assert ledger.charge_balance(charge=charge) == ledger.Balance(D("50.00"), D("30.00"))
        payments.responsibility_move(charge=charge, amount=D("10.00"), to="payer")
        assert ledger.charge_balance(charge=charge) == ledger.Balance(D("60.00"), D("20.00"))
        with pytest.raises(payments.BalanceTooSmallError):
            payments.responsibility_move(charge=charge, amount=D("20.01"), to="payer")
        with pytest.raises(payments.PaymentAmountError) as refused:
            payments.responsibility_move(charge=charge, amount=D("-1"), to="payer")
        assert "amount" in refused.value.extra["errors"]
        payments.adjustment_post(charge=charge, amount=D("60.00"), party="payer", reason_code="45")
        assert ledger.charge_balance(charge=charge).payers == D(0)

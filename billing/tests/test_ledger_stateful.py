"""Hypothesis drives charges, 835 payments (with CO / PR adjustments, duplicates and
reversals), patients' payments and refunds, transfers and write-offs in random order; after
every step the ledger's invariants hold:

- every balance is the sum of its entries, and the account is the sum of its charges' balances
  and its unallocated credit (A/R totals = Σ balances);
- a payer never owes less than nothing on a charge except by a recorded overpayment;
- every cent of a patient's payment is in the ledger (allocated or credit), less its refunds,
  and no refund exceeds its payment;
- the A/R rollup the triggers keep (per party, payer and age date; per patient) is the ledger
  rolled up from scratch."""

import itertools
from decimal import Decimal

import pytest
from django.db.models import Q, Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from billing import ledger, payments
from billing.models import Charge, Claim, ClaimLine, LedgerEntry, Payment
from billing.posting import OVERPAID, remittance_post
from billing.tests import factories
from billing.tests.remit import Pay, charge_of, claim_payment, paying, remittance_835
from billing.tests.rollup import rollup_from_scratch, rollup_kept
from tests.fixtures import in_clinic

D = Decimal
ZERO = D("0.00")
cents = st.integers(1, 30_000).map(lambda n: D(n) / 100)


def _machine():
    codes = itertools.count(1)

    class Ledger(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.visit = factories.billable_visit()
            self.patient = self.visit.patient
            self.charges: list[Charge] = []
            self.claims: dict[int, Claim] = {}  # charge id -> its one-line claim
            self.payments: list[Payment] = []

        def _pick(self, index: int, insured: bool | None = None) -> Charge | None:
            pool = [
                c for c in self.charges if insured is None or (c.payer_id is not None) == insured
            ]
            return pool[index % len(pool)] if pool else None

        @rule(amount=cents, insured=st.booleans())
        def charge(self, amount, insured):
            code = f"T{next(codes):04d}"
            self.charges.append(charge_of(self.visit, code, str(amount), insured=insured))

        @precondition(lambda self: any(c.payer_id for c in self.charges))
        @rule(index=st.integers(0, 99), paid=st.integers(0, 100), pr=st.integers(0, 100))
        def remit(self, index, paid, pr):
            """The payer pays `paid`% of the charge, the patient owes `pr`% of the rest, CO
            the remainder; the same charge may be paid again (an overpayment)."""
            charge = self._pick(index, insured=True)
            claim = self.claims.get(charge.pk) or self._claim(charge)
            amount = charge.amount
            pay = (amount * paid / 100).quantize(D("0.01"))
            share = ((amount - pay) * pr / 100).quantize(D("0.01"))
            co = amount - pay - share
            adjustments = tuple(
                (group, reason, str(value))
                for group, reason, value in (("CO", "45", co), ("PR", "2", share))
                if value
            )
            remittance_post(text=paying(claim, [Pay(str(pay), adjustments)]))

        @precondition(lambda self: self.claims)
        @rule(index=st.integers(0, 99))
        def reverse(self, index):
            claim = list(self.claims.values())[index % len(self.claims)]
            pay = Pay(str(claim.total_charge), ())
            reversal = claim_payment(claim, [pay], status="22", sign=-1)
            remittance_post(text=remittance_835([reversal], payer_id=claim.payer.edi_payer_id))

        def _claim(self, charge: Charge) -> Claim:
            payer = charge.payer
            if len(payer.edi_payer_id) < 10:  # TRN03 is ten characters
                payer.edi_payer_id = f"1{payer.pk:09d}"
                payer.save(update_fields=["edi_payer_id"])
            claim = Claim.objects.create(
                patient=charge.patient, payer=charge.payer, coverage=self.visit.coverage,
                episode=charge.episode, rendering=charge.rendering, total_charge=charge.amount,
            )  # fmt: skip
            ClaimLine.objects.create(
                claim=claim, charge=charge, number=1, amount=charge.amount, units=charge.units
            )
            Claim.objects.filter(pk=claim.pk).update(status="submitted")
            claim.refresh_from_db()
            self.claims[charge.pk] = claim
            return claim

        @rule(amount=cents, copay=st.booleans())
        def pay(self, amount, copay):
            kind = Payment.Kind.COPAY if copay else Payment.Kind.PAYMENT
            self.payments.append(
                payments.payment_take(patient=self.patient, amount=amount, method="cash", kind=kind)
            )

        @precondition(lambda self: self.payments)
        @rule(index=st.integers(0, 99), amount=cents)
        def refund(self, index, amount):
            try:
                payments.payment_refund(
                    payment=self.payments[index % len(self.payments)], amount=amount
                )
            except payments.RefundExceedsPaymentError:
                pass

        @precondition(lambda self: any(c.payer_id for c in self.charges))
        @rule(index=st.integers(0, 99), amount=cents, to=st.sampled_from(["patient", "payer"]))
        def transfer(self, index, amount, to):
            try:
                payments.responsibility_move(
                    charge=self._pick(index, insured=True), amount=amount, to=to
                )
            except payments.BalanceTooSmallError:
                pass

        @precondition(lambda self: self.charges)
        @rule(index=st.integers(0, 99), amount=cents, party=st.sampled_from(["patient", "payer"]))
        def adjust(self, index, amount, party):
            try:
                payments.adjustment_post(
                    charge=self._pick(index), amount=amount, party=party, reason_code="45"
                )
            except (payments.BalanceTooSmallError, payments.PaymentAmountError):
                pass

        @invariant()
        def balances_are_sums_and_add_up(self):
            entries = LedgerEntry.objects.filter(patient=self.patient)
            account = ledger.patient_balance(patient=self.patient)
            by_party = {
                party: entries.filter(party=party).aggregate(t=Sum("amount"))["t"] or ZERO
                for party in ("payer", "patient")
            }
            assert (account.payers, account.patient) == (by_party["payer"], by_party["patient"])
            per_charge = [ledger.charge_balance(charge=c) for c in self.charges]
            credit = entries.filter(charge__isnull=True).aggregate(t=Sum("amount"))["t"] or ZERO
            assert account.total == sum((b.total for b in per_charge), ZERO) + credit
            for charge, balance in zip(self.charges, per_charge, strict=True):
                if charge.payer_id is None:
                    assert balance.payers == ZERO

        @invariant()
        def a_payer_owes_less_than_nothing_only_by_a_recorded_overpayment(self):
            for charge in self.charges:
                entries = LedgerEntry.objects.filter(charge=charge, party="payer")
                overpaid = entries.filter(OVERPAID).aggregate(t=Sum("amount"))["t"] or ZERO
                total = entries.aggregate(t=Sum("amount"))["t"] or ZERO
                assert total - overpaid >= ZERO, (charge.pk, total, overpaid)
                assert overpaid <= ZERO

        @invariant()
        def every_cent_of_a_payment_is_in_the_ledger(self):
            for payment in self.payments:
                refunds = payment.refunds.aggregate(t=Sum("amount"))["t"] or ZERO
                assert refunds <= payment.amount
                posted = LedgerEntry.objects.filter(
                    Q(payment=payment) | Q(payment__refund_of=payment)
                ).aggregate(t=Sum("amount"))["t"]
                assert posted == -(payment.amount - refunds)

        @invariant()
        def the_ar_rollup_is_the_ledger_rolled_up(self):
            assert rollup_kept() == rollup_from_scratch()

    return Ledger


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
def test_ledger_invariants_hold_in_any_order(acme):
    from hypothesis.stateful import run_state_machine_as_test

    with in_clinic(acme):
        run_state_machine_as_test(
            _machine(),
            settings=settings(
                max_examples=15,
                stateful_step_count=15,
                deadline=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            ),
        )

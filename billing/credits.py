"""A patient's credit (money on their account not yet applied to a charge: an overpayment, a
prepayment, a copay taken before the visit was charged) and its application to what they owe.

`credit_apply` is called by every service after which a credit and an open patient balance
may both exist: a payment (older credit first), a transfer of a charge's balance to the patient
(a biller's, or an 835's patient responsibility), a self-pay charge; and by a biller
explicitly (`POST /patients/{id}/balance/apply-credit/`). Under the patient's row lock, so
concurrent payments and applications of one account never take a charge or the credit below
zero.
"""

from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from practice.models import Patient

from .ledger import ZERO
from .models import LedgerEntry

Kind = LedgerEntry.Kind
Party = LedgerEntry.Party


def open_charges(patient: Patient) -> list[tuple[int, Decimal]]:
    """(charge id, what the patient owes on it) of the charges they owe on, oldest first."""
    rows = (
        LedgerEntry.objects.filter(patient=patient, party=Party.PATIENT, charge__isnull=False)
        .values("charge_id", "charge__service_date")
        .annotate(owed=Sum("amount"))
        .filter(owed__gt=0)
        .order_by("charge__service_date", "charge_id")
    )
    return [(row["charge_id"], row["owed"]) for row in rows]


def _credits(patient_id: int) -> list[tuple[int, Decimal]]:
    """(payment id, what is left of it unapplied) of a patient's credits, oldest first. A
    credit is a payment's money on the account (entries with no charge), net of its refunds
    and of what was applied since."""
    rows = (
        LedgerEntry.objects.filter(
            patient_id=patient_id, party=Party.PATIENT, charge__isnull=True, payment__isnull=False
        )
        .annotate(source=Coalesce("payment__refund_of_id", "payment_id"))
        .values("source")
        .annotate(total=Sum("amount"))
        .filter(total__lt=0)
        .order_by("source")
    )
    return [(row["source"], -row["total"]) for row in rows]


def credit_apply(*, patient: Patient, by=None) -> list[LedgerEntry]:
    """Apply the patient's unapplied credit to their oldest open balances (service date, then
    charge): for each share, an entry taking it off the credit (+, no charge) and one paying
    the charge (−), both naming the payment the credit came from, so a refund of that
    payment later finds what it still covers. Never more than is owed on a charge nor more
    than the credit (both read under the patient's row lock, which every writer of a
    patient's share takes first: payments, refunds, transfers, 835 posting). Runs in the
    caller's transaction; returns the entries made."""
    with transaction.atomic():
        Patient.objects.select_for_update().filter(pk=patient.pk).first()
        credits = _credits(patient.pk)
        if not credits:
            return []
        today = timezone.localdate()
        entries: list[LedgerEntry] = []
        owed = open_charges(patient)
        for payment_id, left in credits:
            while left > ZERO and owed:
                charge_id, due = owed[0]
                share = min(due, left)
                left -= share
                owed[0] = (charge_id, due - share)
                if owed[0][1] == ZERO:
                    owed.pop(0)
                common = {
                    "patient": patient,
                    "party": Party.PATIENT,
                    "payment_id": payment_id,
                    "kind": Kind.PAYMENT,
                    "posted_on": today,
                    "created_by": by,
                }
                entries += [
                    LedgerEntry(
                        amount=share, memo=f"Credit applied to charge {charge_id}", **common
                    ),
                    LedgerEntry(
                        charge_id=charge_id,
                        amount=-share,
                        memo=f"Credit of payment {payment_id} applied",
                        **common,
                    ),
                ]
        return LedgerEntry.objects.bulk_create(entries)

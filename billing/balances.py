"""Reads of balances for the API, the pages and the admin: sums of the ledger (never stored),
by charge, in two queries whatever the number of charges."""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Q, Sum

from practice.models import Patient
from practice.selectors import clinic_settings_get

from .ledger import ZERO, patient_balance
from .models import LedgerEntry

Party = LedgerEntry.Party


@dataclass(frozen=True)
class ChargeBalance:
    charge: int
    service_date: date
    code: str
    amount: Decimal
    payers: Decimal
    patient: Decimal

    @property
    def total(self) -> Decimal:
        return self.payers + self.patient


@dataclass(frozen=True)
class PatientBalance:
    patient_id: int
    currency: str
    payers: Decimal
    patient: Decimal
    credit: Decimal  # payments allocated to no charge and no fee (negative)
    charges: list[ChargeBalance] = field(default_factory=list)
    fees: list = field(default_factory=list)  # MissedVisitFee rows (billing.visit_fees)

    @property
    def total(self) -> Decimal:
        return self.payers + self.patient


def patient_balance_by_charge(*, patient: Patient) -> PatientBalance:
    """The account (`billing.ledger.patient_balance`) and each charge's share of it, oldest
    first; charges whose balance is zero are listed too (paid in full)."""
    account = patient_balance(patient=patient)
    rows = (
        LedgerEntry.objects.filter(patient=patient, charge__isnull=False)
        .values(
            "charge_id",
            "charge__service_date",
            "charge__service_code__code",
            "charge__amount",
        )
        .annotate(
            payers=Sum("amount", filter=Q(party=Party.PAYER), default=ZERO),
            owed=Sum("amount", filter=Q(party=Party.PATIENT), default=ZERO),
        )
        .order_by("charge__service_date", "charge_id")
    )
    from .visit_fees import FEE_ENTRIES, fees_paid_from_credit

    credit = (
        LedgerEntry.objects.filter(patient=patient, charge__isnull=True)
        .exclude(FEE_ENTRIES)
        .aggregate(total=Sum("amount", default=ZERO))["total"]
    )
    fees, credit = fees_paid_from_credit(patient=patient, credit=credit)
    return PatientBalance(
        patient_id=patient.pk,
        currency=clinic_settings_get().currency,
        payers=account.payers,
        patient=account.patient,
        credit=credit,
        fees=fees,
        charges=[
            ChargeBalance(
                charge=row["charge_id"],
                service_date=row["charge__service_date"],
                code=row["charge__service_code__code"],
                amount=row["charge__amount"],
                payers=row["payers"],
                patient=row["owed"],
            )
            for row in rows
        ],
    )

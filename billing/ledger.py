"""The money ledger: every amount owed, paid, adjusted or moved is one append-only entry, and
every balance is a sum of entries.

Signs: a positive amount adds to what the party (a payer, or the patient) owes on a charge; a
negative one takes from it. A charge posts +amount to its payer (or to the patient when
self-pay); a payer's payment and contractual adjustment post negative to the payer; patient
responsibility moves from the payer to the patient as a pair of transfers (−x payer, +x
patient) that sum to zero; a patient's payment posts negative to the patient. A correction
never edits an entry (a trigger refuses it): `entry_reverse` posts its opposite.

Writers here take no locks of their own: the services that call them (charging, posting an
835, taking a payment) own the transaction and lock the rows their rule reads.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from practice.models import Patient, Payer

from .models import Charge, Claim, ClaimLine, LedgerEntry, Payment, Remittance

ZERO = Decimal("0.00")
CENT = Decimal("0.01")

Kind = LedgerEntry.Kind
Party = LedgerEntry.Party


def entry_add(
    *,
    patient: Patient,
    party: str,
    kind: str,
    amount: Decimal,
    payer: Payer | None = None,
    charge: Charge | None = None,
    claim: Claim | None = None,
    claim_line: ClaimLine | None = None,
    remittance: Remittance | None = None,
    payment: Payment | None = None,
    group_code: str = "",
    reason_code: str = "",
    remark_codes: Iterable[str] = (),
    reverses: LedgerEntry | None = None,
    memo: str = "",
    posted_on: date | None = None,
    write_off_reason: str = "",
    idempotency_key: str | None = None,
    by=None,
) -> LedgerEntry:
    """Append one entry. `amount` is quantized to cents; zero amounts are not entries (the
    database refuses them), so callers skip them. The party's payer is `payer` for a payer
    entry and none for a patient's (a CHECK)."""
    return LedgerEntry.objects.create(
        patient=patient,
        party=party,
        payer=payer if party == Party.PAYER else None,
        kind=kind,
        amount=amount.quantize(CENT),
        charge=charge,
        claim=claim,
        claim_line=claim_line,
        remittance=remittance,
        payment=payment,
        group_code=group_code,
        reason_code=reason_code,
        remark_codes=list(remark_codes),
        reverses=reverses,
        memo=memo,
        posted_on=posted_on or timezone.localdate(),
        write_off_reason=write_off_reason,
        idempotency_key=idempotency_key,
        created_by=by,
    )


def charge_post(*, charge: Charge, by=None) -> LedgerEntry | None:
    """What a new charge is owed by: its payer (insured) or the patient (self-pay)."""
    if charge.amount == ZERO:
        return None
    return entry_add(
        patient=charge.patient,
        party=Party.PAYER if charge.payer_id else Party.PATIENT,
        payer=charge.payer,
        kind=Kind.CHARGE,
        amount=charge.amount,
        charge=charge,
        posted_on=charge.service_date,
        memo=f"{charge.service_code.code} × {charge.units}",
        by=by,
    )


def responsibility_transfer(
    *,
    charge: Charge,
    amount: Decimal,
    claim: Claim | None = None,
    claim_line: ClaimLine | None = None,
    remittance: Remittance | None = None,
    group_code: str = "",
    reason_code: str = "",
    memo: str = "",
    posted_on: date | None = None,
    idempotency_key: str | None = None,
    by=None,
) -> tuple[LedgerEntry, LedgerEntry]:
    """Move `amount` of a charge from its payer to the patient (positive: the payer's
    remittance says the patient owes it, e.g. PR-2 coinsurance) or back (negative). Two
    entries that sum to zero: A/R is unchanged, only who owes it moves."""
    if charge.payer_id is None:
        raise ValueError("A self-pay charge has no payer to transfer from.")
    common = {
        "patient": charge.patient,
        "kind": Kind.TRANSFER,
        "charge": charge,
        "claim": claim,
        "claim_line": claim_line,
        "remittance": remittance,
        "group_code": group_code,
        "reason_code": reason_code,
        "memo": memo,
        "posted_on": posted_on,
        "idempotency_key": idempotency_key,
        "by": by,
    }
    out = entry_add(party=Party.PAYER, payer=charge.payer, amount=-amount, **common)
    into = entry_add(party=Party.PATIENT, amount=amount, **common)
    return out, into


@transaction.atomic
def entry_reverse(*, entry: LedgerEntry, memo: str = "", by=None) -> LedgerEntry:
    """Post the opposite of `entry` (a reversal names what it reverses; the one-to-one
    `reverses` makes a second reversal of one entry impossible)."""
    return entry_add(
        patient=entry.patient,
        party=entry.party,
        payer=entry.payer,
        kind=Kind.REVERSAL,
        amount=-entry.amount,
        charge=entry.charge,
        claim=entry.claim,
        claim_line=entry.claim_line,
        remittance=entry.remittance,
        payment=entry.payment,
        group_code=entry.group_code,
        reason_code=entry.reason_code,
        remark_codes=entry.remark_codes,
        reverses=entry,
        memo=memo or f"Reversal of entry {entry.pk}",
        by=by,
    )


# --- Balances (sums of entries, never stored) --------------------------------------------------


@dataclass(frozen=True)
class Balance:
    """What is owed on some charges (or a patient's account): by payers, by the patient."""

    payers: Decimal
    patient: Decimal

    @property
    def total(self) -> Decimal:
        return self.payers + self.patient


def _sums(entries: QuerySet[LedgerEntry]) -> Balance:
    sums = entries.aggregate(
        payers=Coalesce(Sum("amount", filter=Q(party=Party.PAYER)), ZERO),
        patient=Coalesce(Sum("amount", filter=Q(party=Party.PATIENT)), ZERO),
    )
    return Balance(payers=sums["payers"], patient=sums["patient"])


def patient_balance(*, patient: Patient) -> Balance:
    """A patient's account: what their payers still owe on their charges and what they owe
    themselves (negative: a credit, e.g. a copay taken before the visit was charged)."""
    return _sums(LedgerEntry.objects.filter(patient=patient))


def charge_balance(*, charge: Charge) -> Balance:
    return _sums(LedgerEntry.objects.filter(charge=charge))


def claim_balance(*, claim: Claim) -> Balance:
    return _sums(LedgerEntry.objects.filter(charge__claim_lines__claim=claim))

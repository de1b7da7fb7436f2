"""Money from (and back to) patients, and moving what is owed between payer and patient.

- `payment_take`: a payment at the desk (cash, card, check, EFT) or a copay; `copay_take`
  takes the copay of the visit's coverage at check-in; `payment_online` charges a card through
  the clinic's processor (billing.processors) first. A payment is allocated to the patient's
  open charges oldest first (one ledger entry per charge, service date then id); what is left
  is a credit on the account (an entry with no charge), so the account's balance is always the
  sum of its charges' balances and its credit.
- `payment_refund`: part or all of a patient's payment, never more than is left of it (the
  payment's row is locked, so two refunds cannot both take the last of it). The refund undoes
  the allocation, the unallocated credit first, then the newest charges.
- `responsibility_move`: a biller moves an amount of a charge from its payer to the patient or
  back; `adjustment_post` writes an amount off with a reason (`WriteOffReason`, and a CAS group
  and CARC for the payer's share). Both take at most what the party owes on the charge (the
  charge's row is locked while its balance is read), and answer a retried idempotency key with
  the entries it first made (`ledger_idempotency_key_per_party`).
- a patient's credit is applied to their oldest balances (`billing.credits.credit_apply`)
  before a new payment is allocated and after a balance moves to them.

Idempotency: a payment's `Idempotency-Key` is unique (a constraint); a second request with the
key answers the first payment, even when both race (the loser's INSERT fails and it reads the
winner's). Locks: the patient's row while a payment is allocated or refunded, so allocations
of one account never interleave.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from clinic.errors import ApplicationError
from practice.models import Coverage, Patient
from scheduling.models import Appointment

from . import ledger
from .credits import credit_apply, open_charges
from .ledger import CENT, ZERO
from .models import Charge, LedgerEntry, Payment, WriteOffReason
from .posting import OVERPAID
from .processors import processor
from .x12.reasons import carc

Kind = LedgerEntry.Kind
Party = LedgerEntry.Party

DESK_METHODS = (
    Payment.Method.CASH,
    Payment.Method.CARD,
    Payment.Method.CHECK,
    Payment.Method.EFT,
)


class PaymentAmountError(ApplicationError):
    status = 400
    code = "payment-amount"
    title = "This amount cannot be taken"

    def __init__(self, detail: str, field: str = "amount"):
        super().__init__(detail, extra={"errors": {field: [detail]}})


class RefundExceedsPaymentError(ApplicationError):
    status = 409
    code = "refund-exceeds-payment"
    title = "More than is left of the payment"

    def __init__(self, detail: str):
        super().__init__(detail, extra={"errors": {"amount": [detail]}})


class NoCopayError(ApplicationError):
    status = 409
    code = "no-copay"
    title = "No copay for this visit"


class PaymentDeclinedError(ApplicationError):
    status = 402
    code = "payment-declined"
    title = "The payment was declined"


class BalanceTooSmallError(ApplicationError):
    status = 409
    code = "balance-too-small"
    title = "More than is owed"

    def __init__(self, detail: str):
        super().__init__(detail, extra={"errors": {"amount": [detail]}})


def _money(amount: Decimal, field: str = "amount") -> Decimal:
    if amount <= ZERO:
        raise PaymentAmountError("An amount greater than zero.", field)
    if amount != amount.quantize(CENT):
        raise PaymentAmountError("At most two decimal places.", field)
    if amount >= Decimal("10000000000"):
        raise PaymentAmountError("Too large an amount.", field)
    return amount.quantize(CENT)


def _by_key(key: str | None) -> Payment | None:
    return Payment.objects.filter(idempotency_key=key).first() if key else None


@transaction.atomic
def payment_take(
    *,
    patient: Patient,
    amount: Decimal,
    method: str,
    kind: str = Payment.Kind.PAYMENT,
    appointment: Appointment | None = None,
    reference: str = "",
    note: str = "",
    processor_name: str = "",
    processor_id: str = "",
    idempotency_key: str | None = None,
    received_at: datetime | None = None,
    by=None,
) -> Payment:
    """Record a patient's payment (or copay) and allocate it: see the module. Locks the
    patient's row. The same idempotency key answers the payment it first made."""
    if (existing := _by_key(idempotency_key)) is not None:
        return existing
    amount = _money(amount)
    if method not in Payment.Method.values:
        raise PaymentAmountError(f"Unknown method {method!r}.", "method")
    Patient.objects.select_for_update().filter(pk=patient.pk).first()
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                patient=patient,
                appointment=appointment,
                kind=kind,
                method=method,
                amount=amount,
                reference=reference[:100],
                note=note[:300],
                processor=processor_name,
                processor_id=processor_id,
                idempotency_key=idempotency_key or None,
                received_at=received_at or timezone.now(),
                taken_by=by,
            )
    except IntegrityError:
        if (existing := _by_key(idempotency_key)) is not None:
            return existing
        raise
    credit_apply(patient=patient, by=by)  # older money first
    _allocate(payment, by=by)
    return payment


def _allocate(payment: Payment, *, by) -> None:
    assert payment.patient is not None
    left = payment.amount
    today = timezone.localdate()
    entries: list[tuple[int | None, Decimal]] = []
    for charge_id, owed in open_charges(payment.patient):
        if left == ZERO:
            break
        share = min(owed, left)
        left -= share
        entries.append((charge_id, share))
    if left > ZERO:
        entries.append((None, left))  # a credit on the account
    LedgerEntry.objects.bulk_create(
        LedgerEntry(
            patient=payment.patient,
            party=Party.PATIENT,
            charge_id=charge_id,
            payment=payment,
            kind=Kind.PAYMENT,
            amount=-share,
            memo=f"{payment.get_kind_display()} ({payment.get_method_display()})"
            + ("" if charge_id else ": credit on the account"),
            posted_on=today,
            created_by=by,
        )
        for charge_id, share in entries
    )


def copay_coverage(appointment: Appointment) -> Coverage | None:
    """The coverage whose copay a visit takes: the patient's active primary coverage on the
    visit's day (in the clinic's zone)."""
    day = timezone.localdate(appointment.start)
    return (
        Coverage.objects.filter(
            patient_id=appointment.patient_id,
            is_active=True,
            priority=Coverage.Priority.PRIMARY,
            effective_from__lte=day,
        )
        .filter(Q(effective_to__isnull=True) | Q(effective_to__gte=day))
        .order_by("-effective_from", "id")
        .first()
    )


def copay_take(
    *,
    appointment: Appointment,
    method: str,
    reference: str = "",
    idempotency_key: str | None = None,
    by=None,
) -> Payment:
    """The visit's copay (its coverage's `copay_amount`), taken once per visit: a second copay
    of the same visit answers the first."""
    existing = Payment.objects.filter(
        appointment=appointment, kind=Payment.Kind.COPAY, status=Payment.Status.SUCCEEDED
    ).first()
    if existing is not None:
        return existing
    coverage = copay_coverage(appointment)
    if coverage is None or coverage.copay_amount <= ZERO:
        raise NoCopayError("The patient's coverage on the visit's day has no copay.")
    return payment_take(
        patient=appointment.patient,
        amount=coverage.copay_amount,
        method=method,
        kind=Payment.Kind.COPAY,
        appointment=appointment,
        reference=reference,
        note=f"Copay of {coverage}",
        idempotency_key=idempotency_key or f"copay-{appointment.pk}",
        by=by,
    )


def payment_online(
    *,
    patient: Patient,
    amount: Decimal,
    token: str,
    currency: str,
    idempotency_key: str,
    by=None,
) -> Payment:
    """Charge a card through the processor (no transaction held while it answers), then
    record and allocate the payment. A decline is recorded as a failed payment (no ledger
    entry) and answered with `PaymentDeclinedError`."""
    if (existing := _by_key(idempotency_key)) is not None:
        return existing
    amount = _money(amount)
    gateway = processor()
    result = gateway.charge(
        amount=amount, currency=currency, token=token, idempotency_key=idempotency_key
    )
    if not result.succeeded:
        Payment.objects.create(
            patient=patient,
            method=Payment.Method.ONLINE,
            amount=amount,
            status=Payment.Status.FAILED,
            processor=gateway.name,
            note=result.message[:300],
            received_at=timezone.now(),
            taken_by=by,
        )
        raise PaymentDeclinedError(result.message or "The card was declined.")
    return payment_take(
        patient=patient,
        amount=amount,
        method=Payment.Method.ONLINE,
        processor_name=gateway.name,
        processor_id=result.processor_id,
        idempotency_key=idempotency_key,
        by=by,
    )


@transaction.atomic
def payment_refund(*, payment: Payment, amount: Decimal, reason: str = "", by=None) -> Payment:
    """Refund part or all of a patient's payment (see the module). Locks the payment's row."""
    amount = _money(amount)
    original = Payment.objects.select_for_update().get(pk=payment.pk)
    if original.kind == Payment.Kind.REFUND or original.patient_id is None:
        raise PaymentAmountError("Only a patient's payment or copay is refunded.", "payment")
    if original.status != Payment.Status.SUCCEEDED:
        raise PaymentAmountError("The payment did not succeed: nothing to refund.", "payment")
    refunded = (
        original.refunds.filter(status=Payment.Status.SUCCEEDED).aggregate(total=Sum("amount"))[
            "total"
        ]
        or ZERO
    )
    left = original.amount - refunded
    if amount > left:
        raise RefundExceedsPaymentError(
            f"{amount} is more than is left of the payment ({left} of {original.amount})."
        )
    processor_id = ""
    if original.method == Payment.Method.ONLINE:
        gateway = processor()
        result = gateway.refund(
            processor_id=original.processor_id,
            amount=amount,
            idempotency_key=f"refund-{original.pk}-{refunded}-{amount}",
        )
        if not result.succeeded:
            raise PaymentDeclinedError(result.message or "The processor refused the refund.")
        processor_id = result.processor_id
    refund = Payment.objects.create(
        patient=original.patient,
        kind=Payment.Kind.REFUND,
        refund_of=original,
        method=original.method,
        amount=amount,
        processor=original.processor,
        processor_id=processor_id,
        note=reason[:300],
        received_at=timezone.now(),
        taken_by=by,
    )
    _unallocate(original, refund, by=by)
    return refund


def _unallocate(original: Payment, refund: Payment, *, by) -> None:
    """Refund entries (positive: the patient owes it again, or has that much less credit)
    against what the payment still covers, the credit first, then the newest charges."""
    covered: dict[int | None, Decimal] = {}
    for row in (
        LedgerEntry.objects.filter(Q(payment=original) | Q(payment__refund_of=original))
        .filter(party=Party.PATIENT)
        .values("charge_id")
        .annotate(total=Sum("amount"))
    ):
        covered[row["charge_id"]] = -row["total"]
    dates = dict(
        Charge.objects.filter(pk__in=[c for c in covered if c]).values_list("pk", "service_date")
    )
    # the credit first, then the newest charges
    charges = sorted(
        (c for c in covered if c is not None and covered[c] > ZERO),
        key=lambda c: (dates[c], c),
        reverse=True,
    )
    order: list[int | None] = [*charges]
    if covered.get(None, ZERO) > ZERO:
        order.insert(0, None)
    left = refund.amount
    today = timezone.localdate()
    entries = []
    for charge_id in order:
        if left == ZERO:
            break
        share = min(covered[charge_id], left)
        left -= share
        entries.append(
            LedgerEntry(
                patient=original.patient,
                party=Party.PATIENT,
                charge_id=charge_id,
                payment=refund,
                kind=Kind.REFUND,
                amount=share,
                memo=f"Refund of payment {original.pk}",
                posted_on=today,
                created_by=by,
            )
        )
    LedgerEntry.objects.bulk_create(entries)


@dataclass(frozen=True)
class PartyBalance:
    payer: Decimal  # overpayments aside
    patient: Decimal


def _charge_owed(charge: Charge) -> PartyBalance:
    sums = LedgerEntry.objects.filter(charge=charge).aggregate(
        payer=Sum("amount", filter=Q(party=Party.PAYER) & ~OVERPAID),
        patient=Sum("amount", filter=Q(party=Party.PATIENT)),
    )
    return PartyBalance(payer=sums["payer"] or ZERO, patient=sums["patient"] or ZERO)


class IdempotencyKeyReusedError(ApplicationError):
    status = 422
    code = "idempotency-key-reused"
    title = "This Idempotency-Key was used for another request"

    def __init__(self, detail: str):
        super().__init__(detail, extra={"errors": {"Idempotency-Key": [detail]}})


def _by_entry_key(key: str | None, *, charge: Charge, kind: str) -> list[LedgerEntry] | None:
    """The entries a key made (payer's first), or None when it made none. A key made for
    another charge or another action is refused rather than answered."""
    if not key:
        return None
    made = sorted(
        LedgerEntry.objects.filter(idempotency_key=key),
        key=lambda e: (e.party != Party.PAYER, e.pk),
    )
    if not made:
        return None
    if any(e.charge_id != charge.pk or e.kind != kind for e in made):
        raise IdempotencyKeyReusedError("The key made another transfer or write-off.")
    return made


@transaction.atomic
def responsibility_move(
    *,
    charge: Charge,
    amount: Decimal,
    to: str,
    memo: str = "",
    idempotency_key: str | None = None,
    by=None,
) -> tuple[LedgerEntry, LedgerEntry]:
    """Move `amount` of a charge to the patient (`to` "patient") or back to its payer
    ("payer"): at most what the other party owes on it; a pair of TRANSFER entries (the
    payer's first) that sum to zero. A move to the patient then applies the patient's unapplied
    credit (`credit_apply`). Locks the charge's row, then the patient's. The same
    idempotency key answers the pair it first made."""
    amount = _money(amount)
    if to not in (Party.PATIENT, Party.PAYER):
        raise PaymentAmountError("Say to whom: patient or payer.", "to")
    charge = (
        Charge.objects.select_for_update(of=("self",)).select_related("payer").get(pk=charge.pk)
    )
    if (made := _by_entry_key(idempotency_key, charge=charge, kind=Kind.TRANSFER)) is not None:
        return made[0], made[1]
    if charge.payer_id is None:
        raise PaymentAmountError("A self-pay charge has no payer to move it between.", "charge")
    owed = _charge_owed(charge)
    source = owed.payer if to == Party.PATIENT else owed.patient
    if amount > source:
        raise BalanceTooSmallError(
            f"{amount} is more than the {'payer' if to == Party.PATIENT else 'patient'} "
            f"owes on this charge ({max(source, ZERO)})."
        )
    signed = amount if to == Party.PATIENT else -amount
    pair = ledger.responsibility_transfer(
        charge=charge,
        amount=signed,
        memo=memo or f"Moved to the {to} by a biller",
        idempotency_key=idempotency_key or None,
        by=by,
    )
    if to == Party.PATIENT:
        credit_apply(patient=charge.patient, by=by)
    return pair


# A write-off's default CAS group and CARC when the payer's share is written off.
WRITE_OFF_CODES: dict[str, tuple[str, str]] = {
    WriteOffReason.CONTRACTUAL: ("CO", "45"),
    WriteOffReason.TIMELY_FILING: ("CO", "29"),
    WriteOffReason.AUTHORIZATION: ("CO", "197"),
}
WRITE_OFF_GROUPS = ("CO", "OA", "PI")


@transaction.atomic
def adjustment_post(
    *,
    charge: Charge,
    amount: Decimal,
    party: str,
    group_code: str = "",
    reason_code: str = "",
    write_off_reason: str = "",
    memo: str = "",
    idempotency_key: str | None = None,
    by=None,
) -> LedgerEntry:
    """Write `amount` of a charge off what `party` owes (at most what it owes): one
    ADJUSTMENT entry with the reason (a `WriteOffReason`; for the payer's share a CAS group
    and a known CARC, by default the reason's). Locks the charge's row. The same idempotency
    key answers the entry it first made."""
    amount = _money(amount)
    if party not in (Party.PATIENT, Party.PAYER):
        raise PaymentAmountError("Say whose share: patient or payer.", "party")
    if write_off_reason and write_off_reason not in WriteOffReason.values:
        raise PaymentAmountError(f"Unknown reason {write_off_reason!r}.", "reason")
    if party == Party.PAYER:
        default_group, default_code = WRITE_OFF_CODES.get(write_off_reason, ("CO", ""))
        group_code, reason_code = group_code or default_group, reason_code or default_code
        if group_code not in WRITE_OFF_GROUPS:
            raise PaymentAmountError("CO, OA or PI for the payer's share.", "group_code")
        if not reason_code:
            raise PaymentAmountError("A CARC for the payer's share.", "reason_code")
    elif group_code:
        raise PaymentAmountError("The patient's share has no CAS group.", "group_code")
    if reason_code and reason_code not in carc():
        raise PaymentAmountError(f"{reason_code!r} is not a CARC we know.", "reason_code")
    charge = (
        Charge.objects.select_for_update(of=("self",)).select_related("payer").get(pk=charge.pk)
    )
    if (made := _by_entry_key(idempotency_key, charge=charge, kind=Kind.ADJUSTMENT)) is not None:
        return made[0]
    if party == Party.PAYER and charge.payer_id is None:
        raise PaymentAmountError("A self-pay charge has no payer.", "party")
    owed = _charge_owed(charge)
    source = owed.payer if party == Party.PAYER else owed.patient
    if amount > source:
        raise BalanceTooSmallError(f"{amount} is more than is owed ({max(source, ZERO)}).")
    label = WriteOffReason(write_off_reason).label if write_off_reason else "Adjustment"
    return ledger.entry_add(
        patient=charge.patient,
        party=party,
        payer=charge.payer,
        kind=Kind.ADJUSTMENT,
        amount=-amount,
        charge=charge,
        group_code=group_code if party == Party.PAYER else "",
        reason_code=reason_code,
        write_off_reason=write_off_reason,
        memo=memo or f"Written off: {label}",
        idempotency_key=idempotency_key or None,
        by=by,
    )

"""No-show and late-cancellation fees: the clinic's policy, and the charge it makes.

The policy (`MissedVisitPolicy`, admin: Billing › No-show and late-cancel policies) is an
amount per visit type (or one for every type) for a no-show and for a late cancellation, in
the clinic's currency, and a grace window: a late cancellation made within `grace_minutes` of
booking is free. Without a row the clinic settings' `late_change_fee` applies to both. The
patient pages print it before the patient books (`policy_for`).

Scheduling never imports billing: it sends `scheduling.signals.appointment_changed` inside the
change's transaction, and `on_appointment_changed` (connected in `BillingConfig.ready`) turns
a no-show, or a late cancellation, into one ledger entry the patient owes (`fee_charge`), in
that same transaction, and a no-show undone (`no_show_undone`) into its reversal. The
erasure's own cancels (practice.rights) are the clinic's, never the patient's: not charged.
`fee_waive` lets staff waive a fee with a reason (a reversal entry). The partial unique index
`missed_visit_fee_once_per_visit` keeps one fee in force per visit, however often or
concurrently the visit is marked.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from clinic.errors import ConflictError
from practice.models import ClinicSettings
from practice.rights import ERASURE_CANCEL_REASON
from scheduling.models import Appointment, AppointmentType

from . import ledger
from .models import LedgerEntry, MissedVisitFee, MissedVisitPolicy

Kind = MissedVisitFee.Kind
Status = MissedVisitFee.Status
ZERO = Decimal("0.00")


class FeeNotChargedError(ConflictError):
    code = "fee-not-charged"
    title = "Fee not in force"


@dataclass(frozen=True)
class Policy:
    """What a visit type's no-show and late cancellation cost (zero: free)."""

    no_show_fee: Decimal
    late_cancel_fee: Decimal
    grace_minutes: int
    currency: str

    @property
    def any(self) -> bool:
        return bool(self.no_show_fee or self.late_cancel_fee)


def policy_for(appointment_type: AppointmentType | None) -> Policy:
    """The policy of `appointment_type`: its own row, else the clinic-wide row, else the
    clinic settings' single late-change fee for both."""
    settings = ClinicSettings.load()
    rows = {
        row.appointment_type_id: row
        for row in MissedVisitPolicy.objects.filter(
            appointment_type__in=[appointment_type] if appointment_type else []
        )
        | MissedVisitPolicy.objects.filter(appointment_type__isnull=True)
    }
    row = rows.get(appointment_type.pk if appointment_type else None) or rows.get(None)
    if row is not None:
        return Policy(row.no_show_fee, row.late_cancel_fee, row.grace_minutes, settings.currency)
    fee = settings.late_change_fee or ZERO
    return Policy(fee, fee, 0, settings.currency)


def _service_date(appointment: Appointment) -> date:
    return appointment.start.astimezone(ZoneInfo(appointment.practitioner.timezone)).date()


def _memo(kind: str, appointment: Appointment) -> str:
    when = appointment.start.isoformat(timespec="minutes")
    return f"{Kind(kind).label} fee: {appointment.appointment_type.name} at {when}"


def fee_charge(
    *, appointment: Appointment, kind: str, by=None, now: datetime | None = None
) -> MissedVisitFee | None:
    """Charge the visit's patient the policy's fee for `kind` (none when the policy's amount is
    zero, or a late cancel within the grace window). Runs in the caller's transaction (the
    scheduling change's); a fee already in force for the visit is kept, not doubled (the
    unique index decides, in a savepoint)."""
    now = now or appointment.cancelled_at or timezone.now()
    policy = policy_for(appointment.appointment_type)
    amount = policy.no_show_fee if kind == Kind.NO_SHOW else policy.late_cancel_fee
    if amount <= ZERO:
        return None
    if kind == Kind.LATE_CANCEL and now - appointment.created_at <= timedelta(
        minutes=policy.grace_minutes
    ):
        return None
    try:
        with transaction.atomic():
            entry = ledger.entry_add(
                patient=appointment.patient,
                party=LedgerEntry.Party.PATIENT,
                kind=LedgerEntry.Kind.CHARGE,
                amount=amount,
                memo=_memo(kind, appointment),
                posted_on=_service_date(appointment),
                by=by,
            )
            return MissedVisitFee.objects.create(
                appointment=appointment,
                patient=appointment.patient,
                kind=kind,
                amount=amount,
                entry=entry,
            )
    except IntegrityError as error:
        if "missed_visit_fee_once_per_visit" not in str(error):
            raise
        return MissedVisitFee.objects.get(appointment=appointment, status=Status.CHARGED)


def _reverse(fee: MissedVisitFee, *, status: str, reason: str, by) -> MissedVisitFee:
    fee.reversal = ledger.entry_reverse(
        entry=fee.entry, memo=f"{fee.get_kind_display()} fee {status}: {reason}"[:300], by=by
    )
    fee.status, fee.reason = status, reason[:300]
    fee.decided_at, fee.decided_by = timezone.now(), by
    fee.save(update_fields=["reversal", "status", "reason", "decided_at", "decided_by"])
    return fee


@transaction.atomic
def fee_waive(*, fee: MissedVisitFee, reason: str, by) -> MissedVisitFee:
    """Staff waive a fee in force: a reversal entry, the reason and who. Locks the fee's row;
    a fee already reversed or waived is FeeNotChargedError (409), a blank reason a
    ValidationError on `reason`."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why the fee is waived."})
    fee = MissedVisitFee.objects.select_for_update().select_related("entry").get(pk=fee.pk)
    if fee.status != Status.CHARGED:
        raise FeeNotChargedError(f"This fee is already {fee.get_status_display().lower()}.")
    return _reverse(fee, status=Status.WAIVED, reason=reason, by=by)


def no_show_fee_reverse(*, appointment: Appointment, by=None) -> MissedVisitFee | None:
    """The no-show was undone: its fee in force, if any, is reversed (in the caller's
    transaction, under the fee's row lock)."""
    fee = (
        MissedVisitFee.objects.select_for_update()
        .select_related("entry")
        .filter(appointment=appointment, kind=Kind.NO_SHOW, status=Status.CHARGED)
        .first()
    )
    if fee is None:
        return None
    return _reverse(fee, status=Status.REVERSED, reason="The no-show was undone.", by=by)


# A fee's entries (its charge and its reversal): on the account, but not "payments not yet
# applied" (statements and balances list them as fees).
FEE_ENTRIES = Q(missed_visit_fee__isnull=False) | Q(reverses__missed_visit_fee__isnull=False)


def fees_of(*, patient) -> list[MissedVisitFee]:
    """The patient's fees, newest first, with their visit (a balance's "Fees" part)."""
    return list(
        MissedVisitFee.objects.filter(patient=patient)
        .select_related("appointment__appointment_type")
        .order_by("-created_at", "-id")
    )


def fees_paid_from_credit(*, patient, credit: Decimal) -> tuple[list[MissedVisitFee], Decimal]:
    """The patient's fees (newest first), each with `owed`: what is still owed on it. A fee is
    on the account, not on a charge, so a payment the patient makes for it stays money on the
    account; that money pays the fees in force first, oldest first, and only what is left is
    credit. Returns the fees and that credit (`credit` is the account's money not applied to a
    charge, fees excluded: negative when the patient has paid in)."""
    fees = fees_of(patient=patient)
    available = -credit if credit < ZERO else ZERO
    for fee in reversed(fees):
        due = fee.amount if fee.status == Status.CHARGED else ZERO
        paid = min(due, available)
        available -= paid
        fee.owed = due - paid  # type: ignore[attr-defined]
    return fees, (-available if credit < ZERO else credit)


def on_appointment_changed(sender, *, appointment, kind: str, by=None, data=None, **kwargs):
    """Receiver of scheduling's `appointment_changed` (in the change's transaction)."""
    data = data or {}
    if kind == "no_show":
        fee_charge(appointment=appointment, kind=Kind.NO_SHOW, by=by)
    elif kind == "cancelled" and data.get("late") and data.get("reason") != ERASURE_CANCEL_REASON:
        fee_charge(appointment=appointment, kind=Kind.LATE_CANCEL, by=by)
    elif kind == "no_show_undone":
        no_show_fee_reverse(appointment=appointment, by=by)

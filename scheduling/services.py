"""Booking and status changes: book, cancel, reschedule, check in, complete, no-show. Each
function owns its transaction.

Double booking is impossible because PostgreSQL's exclusion constraint `appointment_no_overlap`
refuses the second row; these services only translate that refusal into a 409 with
alternatives. Row locks (`select_for_update`) serialise changes to one appointment. The other
booking rules are `booking_rules.slot_validate`'s (422), the units `units`' (in the same
transaction); which status changes are allowed, to whom and when is `states.TRANSITIONS`
(enforced here under the row lock). Every change is logged and, once committed, published
(`_record`).
"""

import functools
import uuid
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from authorizations import services as ledger
from clinic.errors import constraint_name
from clinic.inputs import schedule_date_error
from clinic.tenancy import tenant_connection
from practice.models import ClinicSettings, Location, Patient, Practitioner
from realtime.groups import group_name, publish

from . import availability, states
from .booking_rules import books_as_staff, slot_facts, slot_validate, wall_clock
from .errors import (
    IdempotencyKeyReusedError,
    InvalidTransitionError,
    OverbookNotAllowedError,
    SlotUnavailableError,
)
from .models import Appointment, AppointmentEvent, AppointmentSeries, AppointmentType
from .next_available.refresh import NextAvailableReach, next_available_may_move
from .next_available.tasks import refresh_next_available_task
from .signals import appointment_changed
from .units import appointment_units_follow, appointment_units_release, appointment_units_reserve

Status = Appointment.Status


def overbook_allowed(user) -> bool:
    """Whether `user` may book over another visit or outside hours (the board offers it to
    them; `appointment_book` and `appointment_reschedule` refuse everyone else, 403): the
    appointment's `overbook` permission (scheduling/grants.py)."""
    return user is not None and user.has_perm("scheduling.overbook_appointment")


def _overbook_check(user) -> None:
    if not overbook_allowed(user):
        raise OverbookNotAllowedError("Only the front desk and clinic admins overbook.")


def _constraint_name(error: IntegrityError) -> str:
    return constraint_name(error)  # from the diagnostics, or the message (Citus shards)


HELD = "appointment_no_overlap_held"  # raised by the waitlist's hold trigger


def _held_until(error: IntegrityError | None) -> datetime | None:
    """Until when a waitlist hold keeps the slot, when that is what refused the row (the
    trigger's DETAIL carries the expiry as epoch seconds)."""
    if error is None or not _constraint_name(error).startswith(HELD):
        return None
    detail = getattr(error.__cause__.diag, "message_detail", "") or ""  # type: ignore[union-attr]
    try:
        return datetime.fromtimestamp(float(detail), tz=UTC)
    except ValueError:
        return None


def _event_payload(appointment: Appointment, kind: str) -> dict:
    return {
        "type": f"appointment.{kind}",
        "appointment": {
            "id": appointment.pk,
            "practitioner": appointment.practitioner_id,
            "patient": appointment.patient_id,
            "patient_name": str(appointment.patient),
            "appointment_type": appointment.appointment_type_id,
            "location": appointment.location_id,
            "start": appointment.start.isoformat(),
            "end": appointment.end.isoformat(),
            "status": appointment.status,
            "source": appointment.source,
        },
    }


# Changes that take or free schedule time (check-in and completion do neither).
_TAKES_OR_FREES_TIME = frozenset(
    {"booked", "cancelled", "rescheduled", "no_show", "no_show_undone"}
)


def _record(
    appointment: Appointment,
    kind: str,
    by,
    *,
    next_available: NextAvailableReach | None = None,
    **data,
) -> None:
    """Log the change and, once committed, push it to the clinic's and the practitioner's
    schedule groups (the staff board listens there), and refresh the practitioner's next
    available slot if the change can move it (`next_available`: as already read, if it was)."""
    AppointmentEvent.objects.create(appointment=appointment, kind=kind, by=by, data=data)
    # In the transaction: a receiver's rows (a notice, its reminders) commit with the change.
    appointment_changed.send(
        sender=Appointment, appointment=appointment, kind=kind, by=by, data=data
    )
    payload = _event_payload(appointment, kind)
    groups = [
        group_name("schedule"),
        group_name("schedule", "practitioner", appointment.practitioner_id),
    ]
    previous = data.get("previous") or {}
    # A visit moved to another practitioner leaves the first one's column too.
    moved_from = previous.get("practitioner")
    if moved_from and moved_from != appointment.practitioner_id:
        groups.append(group_name("schedule", "practitioner", moved_from))
        payload["previous_practitioner"] = moved_from

    practitioner_id = appointment.practitioner_id
    touched_from = None  # where the time taken or freed begins
    if kind in _TAKES_OR_FREES_TIME:
        touched_from = appointment.blocked.lower
        if previous:
            before = timedelta(minutes=appointment.appointment_type.buffer_before_minutes)
            touched_from = min(touched_from, datetime.fromisoformat(previous["start"]) - before)

    def send() -> None:
        publish(groups, payload)
        if moved_from and moved_from != practitioner_id:
            # The first practitioner's time was freed: their next slot may be earlier now.
            refresh_next_available_task.delay([moved_from, practitioner_id])
        elif touched_from is not None and next_available_may_move(
            practitioner_id=practitioner_id, touched_from=touched_from, known=next_available
        ):
            refresh_next_available_task.delay([practitioner_id])

    # robust: the change is committed; a failed notice is logged, never the caller's error
    # (a 500 for a booking that was made would invite a second one).
    transaction.on_commit(send, robust=True)


def _slot_unavailable(
    *,
    appointment_type: AppointmentType,
    practitioner: Practitioner,
    start: datetime,
    end: datetime,
    exclude_id: int | None = None,
    held_until: datetime | None = None,
) -> SlotUnavailableError:
    if held_until is not None:
        # The waitlist's trigger (waitlist/migrations/0001): the slot is offered to someone.
        return SlotUnavailableError(
            f"This time with {practitioner.display_name} is held for a patient on the "
            f"waitlist until {wall_clock(held_until, practitioner)}; it is free again if they "
            "do not take it.",
            extra={"held_until": held_until.isoformat(), "suggested_alternatives": []},
        )
    lo, hi = availability.blocked_bounds(appointment_type, start, end)
    conflicts = availability.conflicts_for(
        practitioner_id=practitioner.pk, start=lo, end=hi, exclude_id=exclude_id
    )
    alternatives = availability.suggested_alternatives(
        appointment_type=appointment_type,
        practitioner=practitioner,
        after=start,
        exclude_appointment_id=exclude_id,
    )
    return SlotUnavailableError(
        f"{practitioner.display_name} is already booked at {wall_clock(start, practitioner)}.",
        extra={"conflicting_appointments": conflicts, "suggested_alternatives": alternatives},
    )


def _telehealth_url() -> str:
    base = ClinicSettings.load().telehealth_base_url.rstrip("/")
    return f"{base}/{tenant_connection.schema_name}-{uuid.uuid4().hex}"


class _SlotTaken(Exception):
    """Raised inside a booking's transaction when the exclusion constraint refuses the row;
    `_conflict_after_rollback` turns it into the 409."""

    def __init__(self, end: datetime, held_until: datetime | None = None):
        super().__init__("slot taken")
        self.end, self.held_until = end, held_until


def _conflict_after_rollback(book):
    """Build a refused booking's 409 (conflicting ids, suggested alternatives) once its
    transaction has rolled back. Inside it the practitioner's row lock was still held, so the
    losers of a race for one slot computed their alternatives one at a time, each holding up
    the next (200 at once took minutes); now each holds the lock only for its insert. Inside
    an outer transaction (a series) nothing changes: that one still holds the lock."""

    @functools.wraps(book)
    def wrapper(*, appointment_type: AppointmentType, practitioner: Practitioner,
                start: datetime, **kwargs):  # fmt: skip
        try:
            return book(
                appointment_type=appointment_type, practitioner=practitioner, start=start, **kwargs
            )
        except _SlotTaken as taken:
            raise _slot_unavailable(
                appointment_type=appointment_type,
                practitioner=practitioner,
                start=start,
                end=taken.end,
                held_until=taken.held_until,
            ) from taken.__cause__

    return wrapper


@_conflict_after_rollback
@transaction.atomic
def appointment_book(
    *,
    patient: Patient,
    practitioner: Practitioner,
    appointment_type: AppointmentType,
    start: datetime,
    booked_by=None,
    source: str = Appointment.Source.STAFF,
    location: Location | None = None,
    telehealth: bool | None = None,
    notes: str = "",
    overbook: bool = False,
    idempotency_key: str | None = None,
    series: AppointmentSeries | None = None,
    smart_job_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Book one visit.

    Overlaps are refused by the database's exclusion constraint (409 with the conflicting ids
    and alternatives); every other rule by `slot_validate` (422 naming the field). A repeated
    idempotency key returns the first booking. Staff may overbook (recorded with who did it).
    Publishes `appointment.booked` on commit. A start far from today (`clinic.inputs`) is a
    ValidationError naming `start`: year 1 or 9999 overflows once a duration is added.
    """
    if message := schedule_date_error(start):
        raise ValidationError({"start": [message]})
    if idempotency_key:
        existing = Appointment.objects.filter(
            booked_by=booked_by, idempotency_key=idempotency_key
        ).first()
        if existing is not None:
            return _idempotent_replay(existing, patient, practitioner, start)
    if overbook:
        _overbook_check(booked_by)
    # The practitioner's lock (see `_lock_practitioner`) comes with what the rules read.
    facts = slot_facts(
        practitioner=practitioner,
        appointment_type=appointment_type,
        start=start,
        end=start + timedelta(minutes=appointment_type.duration_minutes),
        lock=True,
    )
    check = slot_validate(
        patient=patient,
        practitioner=practitioner,
        appointment_type=appointment_type,
        start=start,
        location=location,
        telehealth=telehealth,
        overbook=overbook,
        now=now,
        facts=facts,
        staff=books_as_staff(booked_by, patient),
    )
    appointment = Appointment(
        practitioner=practitioner,
        patient=patient,
        appointment_type=appointment_type,
        location_id=check.location_id,
        start=start,
        end=check.end,
        blocked=availability.blocked_range(appointment_type, start, check.end),
        source=source,
        is_telehealth=check.is_telehealth,
        telehealth_url=_telehealth_url() if check.is_telehealth else "",
        notes=notes,
        booked_by=booked_by,
        overbooked=overbook,
        overbooked_by=booked_by if overbook else None,
        idempotency_key=idempotency_key or None,
        series=series,
        smart_job_id=smart_job_id,
    )
    try:
        # This function's transaction rolls back on any refusal; a savepoint (two more round
        # trips) only where the code goes on after the error: a repeated idempotency key.
        with transaction.atomic() if idempotency_key else nullcontext():
            appointment.save()
    except IntegrityError as error:
        name = _constraint_name(error)
        if name.startswith("appointment_idempotency_key"):
            existing = Appointment.objects.get(booked_by=booked_by, idempotency_key=idempotency_key)
            return _idempotent_replay(existing, patient, practitioner, start)
        if name.startswith("appointment_no_overlap"):
            raise _SlotTaken(check.end, _held_until(error)) from error
        raise
    appointment_units_reserve(appointment, by=booked_by)
    _record(
        appointment,
        "booked",
        booked_by,
        next_available=facts.next_available,
        source=source,
        overbooked=overbook,
    )
    return appointment


def _lock_practitioner(practitioner: Practitioner) -> None:
    """Queue writers of one practitioner's schedule behind each other.

    The exclusion constraint alone is the guarantee, but concurrent inserts of overlapping
    ranges can deadlock inside PostgreSQL's constraint check; a NO KEY UPDATE lock on the
    practitioner row (compatible with the foreign-key checks of other inserts) lets them take
    turns, so a loser always gets a clean 409.
    """
    Practitioner.objects.select_for_update(no_key=True).filter(pk=practitioner.pk).exists()


def _idempotent_replay(
    existing: Appointment, patient: Patient, practitioner: Practitioner, start: datetime
) -> Appointment:
    if (existing.patient_id, existing.practitioner_id, existing.start) != (
        patient.pk,
        practitioner.pk,
        start,
    ):
        raise IdempotencyKeyReusedError(
            "This Idempotency-Key was used for a different booking; use a new key."
        )
    existing.replayed = True
    return existing


def _lock(appointment: Appointment) -> Appointment:
    return (
        Appointment.objects.select_for_update(of=("self",))
        .select_related("practitioner", "patient", "appointment_type__service_code")
        .get(pk=appointment.pk)
    )


@transaction.atomic
def appointment_cancel(
    *,
    appointment: Appointment,
    by=None,
    reason: str = "",
    now: datetime | None = None,
) -> Appointment:
    """Cancel a booked or checked-in visit (`states.TRANSITIONS["cancel"]`). Staff may cancel
    after the late-change deadline, and the cancel is marked late; the visit's own patient is
    refused then (LateCancelError). Locks the row; releases the units."""
    now = now or timezone.now()
    appointment = _lock(appointment)
    states.transition_check(appointment, states.CANCEL, by=by, now=now)
    # A visit long past (a clean-up of old bookings) is not a late cancel.
    late = states.is_late(appointment, now) and appointment.start > now - timedelta(days=1)
    appointment.status = Status.CANCELLED
    appointment.cancelled_at = now
    appointment.cancelled_by = by
    appointment.cancellation_reason = reason[:300]
    appointment.is_late_cancel = late
    appointment.save()
    appointment_units_release(appointment, by=by)
    _record(appointment, "cancelled", by, reason=reason, late=late)
    return appointment


@transaction.atomic
def appointment_reschedule(
    *,
    appointment: Appointment,
    start: datetime,
    by=None,
    practitioner: Practitioner | None = None,
    overbook: bool = False,
    now: datetime | None = None,
) -> Appointment:
    """Move a booked visit to `start`, with `practitioner` if given another one
    (`states.TRANSITIONS["reschedule"]`; the visit's own patient only until the late-change
    deadline), atomically: the row is updated in place, so the new time is claimed (the
    exclusion constraint checks it against every other visit of the practitioner it lands
    with) in the same statement that frees the old one. A refused move leaves the original
    untouched. Locks the visit's row, then the target practitioner's (as a booking does).
    Staff moves are held to the clinic's staff notice, the patient's to the type's. A start
    far from today is a ValidationError naming `start` (see `appointment_book`)."""
    if message := schedule_date_error(start):
        raise ValidationError({"start": [message]})
    now = now or timezone.now()
    appointment = _lock(appointment)
    states.transition_check(appointment, states.RESCHEDULE, by=by, now=now)
    if overbook:
        _overbook_check(by)
    target = practitioner or appointment.practitioner
    same_practitioner = target.pk == appointment.practitioner_id
    keep_location = same_practitioner and not appointment.is_telehealth
    check = slot_validate(
        patient=appointment.patient,
        practitioner=target,
        appointment_type=appointment.appointment_type,
        start=start,
        # With another practitioner the visit goes where they work at that time.
        location=appointment.location if keep_location else None,
        telehealth=appointment.is_telehealth,
        overbook=overbook,
        now=now,
        staff=books_as_staff(by, appointment.patient),
    )
    previous = {
        "start": appointment.start.isoformat(),
        "end": appointment.end.isoformat(),
        "practitioner": appointment.practitioner_id,
    }
    appointment.practitioner = target
    appointment.start = start
    appointment.end = check.end
    appointment.blocked = availability.blocked_range(appointment.appointment_type, start, check.end)
    appointment.location_id = check.location_id
    appointment.reschedule_count += 1
    if overbook:
        appointment.overbooked, appointment.overbooked_by = True, by
    _lock_practitioner(target)
    try:
        with transaction.atomic():
            appointment.save()
    except IntegrityError as error:
        if _constraint_name(error).startswith("appointment_no_overlap"):
            raise _slot_unavailable(
                appointment_type=appointment.appointment_type,
                practitioner=target,
                start=start,
                end=check.end,
                exclude_id=appointment.pk,
                held_until=_held_until(error),
            ) from error
        raise
    appointment_units_follow(appointment, by=by)
    _record(appointment, "rescheduled", by, previous=previous)
    return appointment


def _transition(appointment: Appointment, action: str, *, by, now: datetime | None) -> Appointment:
    """Check in, complete or mark a no-show: the table's row decides, under the row lock."""
    now = now or timezone.now()
    appointment = _lock(appointment)
    to = states.transition_check(appointment, action, by=by, now=now).target
    appointment.status = to
    if to == Status.CHECKED_IN:
        appointment.checked_in_at = now
    if to == Status.COMPLETED:
        appointment.completed_at = now
    appointment.save()
    if to in (Status.COMPLETED, Status.NO_SHOW):
        reservation = appointment.unit_reservation  # None, without a query, when there is none
        if reservation is not None and to == Status.COMPLETED:
            ledger.units_consume(reservation=reservation, by=by)
        elif reservation is not None:
            ledger.units_release(reservation=reservation, by=by)
    _record(appointment, to, by)
    return appointment


@transaction.atomic
def appointment_check_in(*, appointment: Appointment, by=None, now=None) -> Appointment:
    """A booked visit's patient has arrived: only on the visit's own day in the clinic's zone."""
    return _transition(appointment, states.CHECK_IN, by=by, now=now)


@transaction.atomic
def appointment_complete(*, appointment: Appointment, by=None, now=None) -> Appointment:
    """The visit took place (from its start on): its reserved units are consumed."""
    return _transition(appointment, states.COMPLETE, by=by, now=now)


@transaction.atomic
def appointment_no_show(*, appointment: Appointment, by=None, now=None) -> Appointment:
    """The patient did not come (from the visit's start on): its units are released."""
    return _transition(appointment, states.NO_SHOW, by=by, now=now)


@transaction.atomic
def appointment_no_show_undo(*, appointment: Appointment, by=None) -> Appointment:
    """Staff marked a no-show by mistake (the patient came, or called in time): the visit is
    booked again, its slot taken back (the exclusion constraint decides: a slot booked by
    someone else meanwhile is InvalidTransitionError, 409) and its units reserved again. Not a
    row of `states.TRANSITIONS` (no patient, no clock rule): the caller checks the
    appointment's `noshow` permission. Sends `no_show_undone` (billing reverses the fee)."""
    appointment = _lock(appointment)
    if appointment.status != Status.NO_SHOW:
        raise InvalidTransitionError(
            f"Only a no-show can be undone; this visit is "
            f"{appointment.get_status_display().lower()}."
        )
    appointment.status = Status.BOOKED
    _lock_practitioner(appointment.practitioner)
    try:
        with transaction.atomic():
            appointment.save(update_fields=["status"])
    except IntegrityError as error:
        if _constraint_name(error).startswith("appointment_no_overlap"):
            raise InvalidTransitionError(
                "Its time was booked for another visit meanwhile; the no-show stays."
            ) from error
        raise
    appointment_units_reserve(appointment, by=by)
    _record(appointment, "no_show_undone", by)
    return appointment

"""Every write to the schedule. Each function owns its transaction.

Double booking is impossible because PostgreSQL's exclusion constraint `appointment_no_overlap`
refuses the second row; these services only translate that refusal into a 409 with
alternatives. Row locks (`select_for_update`) serialise changes to one appointment.
"""

import functools
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone
from django_tenants.utils import quote_schema_name
from psycopg.types.range import Range

from authorizations import selectors as auth_selectors
from authorizations import services as ledger
from authorizations.errors import (
    AuthorizationNotValidError,
    AuthorizationRequiredError,
    AuthorizationWeeklyCapError,
)
from authorizations.models import AuthorizationLine
from clinic.api import clinic_data_changed
from clinic.errors import ApplicationError
from clinic.permissions import CLINIC_ADMIN, FRONT_DESK, PRACTITIONER
from practice.models import ClinicSettings, Location, Patient, Practitioner
from realtime.groups import group_name, publish
from tenants.selectors import schemas_where

from . import selectors
from .errors import (
    BookingRefusedError,
    IdempotencyKeyReusedError,
    InvalidTransitionError,
    LateCancelError,
    OverbookNotAllowedError,
    SeriesConflictError,
    SlotUnavailableError,
)
from .models import (
    Appointment,
    AppointmentEvent,
    AppointmentSeries,
    AppointmentType,
    NextAvailable,
)

OVERBOOK_ROLES = frozenset({CLINIC_ADMIN, FRONT_DESK, PRACTITIONER})
MAX_SERIES_OCCURRENCES = 200
Status = Appointment.Status


def _constraint_name(error: IntegrityError) -> str:
    diag = getattr(error.__cause__, "diag", None)
    return (getattr(diag, "constraint_name", None) or "") if diag else ""


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
_TAKES_OR_FREES_TIME = frozenset({"booked", "cancelled", "rescheduled", "no_show"})


def _record(
    appointment: Appointment,
    kind: str,
    by,
    *,
    next_available: selectors.NextAvailableReach | None = None,
    **data,
) -> None:
    """Log the change and, once committed, push it to the clinic's and the practitioner's
    schedule groups (the staff board listens there), and refresh the practitioner's next
    available slot if the change can move it (`next_available`: as already read, if it was)."""
    AppointmentEvent.objects.create(appointment=appointment, kind=kind, by=by, data=data)
    payload = _event_payload(appointment, kind)
    groups = [
        group_name("schedule"),
        group_name("schedule", "practitioner", appointment.practitioner_id),
    ]

    practitioner_id = appointment.practitioner_id
    touched_from = None  # where the time taken or freed begins
    if kind in _TAKES_OR_FREES_TIME:
        touched_from = appointment.blocked.lower
        previous = data.get("previous")
        if previous:
            before = timedelta(minutes=appointment.appointment_type.buffer_before_minutes)
            touched_from = min(touched_from, datetime.fromisoformat(previous["start"]) - before)

    def send() -> None:
        publish(groups, payload)
        if touched_from is not None and next_available_may_move(
            practitioner_id=practitioner_id, touched_from=touched_from, known=next_available
        ):
            from .tasks import refresh_next_available_task

            refresh_next_available_task.delay([practitioner_id])

    # robust: the change is committed; a failed notice is logged, never the caller's error
    # (a 500 for a booking that was made would invite a second one).
    transaction.on_commit(send, robust=True)


def next_available_may_move(
    *,
    practitioner_id: int,
    touched_from: datetime,
    known: selectors.NextAvailableReach | None = None,
) -> bool:
    """Whether taking or freeing schedule time from `touched_from` on can move the
    practitioner's next available slot S (for type T, as last computed; `known` if already
    read, else one query).

    A booking can only take S if its blocked range starts before S's ends (S + T's duration
    and buffer after), and freeing time can only open a slot before S if the freed range
    starts before such a slot's blocked range ends; both are inside `S + T's duration and
    buffers`. Changes further out (most bookings: days or weeks ahead) leave S alone, so they
    queue no refresh. Unknown, empty or passed S: refresh. The beat refreshes the rows time
    overtakes (`next_available_refresh_stale`)."""
    if known is None:
        row = (
            NextAvailable.objects.filter(practitioner_id=practitioner_id)
            .select_related("appointment_type")
            .first()
        )
        known = selectors.NextAvailableReach(None, None)
        if row is not None and row.appointment_type is not None:
            t = row.appointment_type
            reach = t.duration_minutes + t.buffer_before_minutes + t.buffer_after_minutes
            known = selectors.NextAvailableReach(row.start, timedelta(minutes=reach))
    if known.start is None or known.reach is None or known.start <= timezone.now():
        return True
    return touched_from < known.start + known.reach


def _refuse(detail: str, code: str, field: str) -> BookingRefusedError:
    return BookingRefusedError(detail, code=code, field=field)


def _local(moment: datetime, practitioner: Practitioner) -> str:
    return moment.astimezone(ZoneInfo(practitioner.timezone)).strftime("%a %d %b %Y %H:%M %Z")


@dataclass(frozen=True)
class SlotCheck:
    end: datetime
    location_id: int | None
    is_telehealth: bool


def slot_validate(
    *,
    patient: Patient,
    practitioner: Practitioner,
    appointment_type: AppointmentType,
    start: datetime,
    location: Location | None = None,
    telehealth: bool | None = None,
    overbook: bool = False,
    now: datetime | None = None,
    facts: selectors.SlotFacts | None = None,
) -> SlotCheck:
    """Every booking rule except the overlap (which the database owns). Raises
    BookingRefusedError naming the field at fault. `facts`: as read by `selectors.slot_facts`
    for this slot, if already read."""
    now = now or timezone.now()
    if timezone.is_naive(start):
        raise _refuse("Give the start time with its UTC offset.", "naive-datetime", "start")
    if not patient.is_active:
        raise _refuse("This patient record is inactive.", "patient-inactive", "patient")
    if not practitioner.is_active:
        raise _refuse("This practitioner is not active.", "practitioner-inactive", "practitioner")
    if not appointment_type.is_active:
        raise _refuse("This appointment type is retired.", "type-inactive", "appointment_type")
    end = start + timedelta(minutes=appointment_type.duration_minutes)
    if facts is None:
        facts = selectors.slot_facts(
            practitioner=practitioner, appointment_type=appointment_type, start=start, end=end
        )
    if not facts.offered:
        raise _refuse(
            f"{practitioner.display_name} does not offer {appointment_type.name}.",
            "type-not-offered",
            "appointment_type",
        )
    mode = appointment_type.mode
    if mode == AppointmentType.Mode.TELEHEALTH:
        is_telehealth = True
    elif mode == AppointmentType.Mode.IN_PERSON:
        if telehealth:
            raise _refuse(
                f"{appointment_type.name} is in person only.", "mode-not-offered", "telehealth"
            )
        is_telehealth = False
    else:
        is_telehealth = bool(telehealth)
    if is_telehealth and not practitioner.offers_telehealth:
        raise _refuse(
            f"{practitioner.display_name} does not offer telehealth.",
            "mode-not-offered",
            "telehealth",
        )
    if start <= now:
        raise _refuse("This time is in the past.", "start-in-past", "start")
    notice = timedelta(minutes=appointment_type.min_notice_minutes)
    if start < now + notice:
        hours = appointment_type.min_notice_minutes / 60
        raise _refuse(
            f"{appointment_type.name} must be booked at least {hours:g} hours ahead.",
            "inside-minimum-notice",
            "start",
        )
    if start > now + timedelta(days=appointment_type.horizon_days):
        raise _refuse(
            f"{appointment_type.name} can be booked at most "
            f"{appointment_type.horizon_days} days ahead.",
            "beyond-horizon",
            "start",
        )
    if facts.away:
        raise _refuse(
            f"{practitioner.display_name} is away at {_local(start, practitioner)}.",
            "practitioner-time-off",
            "start",
        )
    location_id = location.pk if location else None
    block = selectors.covering_block(
        practitioner=practitioner,
        start=start,
        end=end,
        location_id=location_id,
        hours=facts.hours,
    )
    if block is None and not overbook:
        where = f" at {location.name}" if location else ""
        raise _refuse(
            f"{practitioner.display_name} does not work{where} at {_local(start, practitioner)}.",
            "outside-working-hours",
            "start",
        )
    if location_id is None and not is_telehealth:
        # The block's location, or (an overbook outside hours) the practitioner's first.
        if block:
            location_id = block[2]
        else:
            location_id = practitioner.locations.values_list("pk", flat=True).first()
    if not is_telehealth and location_id is None:
        raise _refuse("An in-person visit needs a location.", "location-required", "location")
    return SlotCheck(end=end, location_id=location_id, is_telehealth=is_telehealth)


def _blocked_range(appointment_type: AppointmentType, start: datetime, end: datetime) -> Range:
    return Range(
        start - timedelta(minutes=appointment_type.buffer_before_minutes),
        end + timedelta(minutes=appointment_type.buffer_after_minutes),
        "[)",
    )


def _slot_unavailable(
    *,
    appointment_type: AppointmentType,
    practitioner: Practitioner,
    start: datetime,
    end: datetime,
    exclude_id: int | None = None,
) -> SlotUnavailableError:
    blocked = _blocked_range(appointment_type, start, end)
    conflicts = selectors.conflicts_for(
        practitioner_id=practitioner.pk,
        start=blocked.lower,
        end=blocked.upper,
        exclude_id=exclude_id,
    )
    alternatives = selectors.suggested_alternatives(
        appointment_type=appointment_type,
        practitioner=practitioner,
        after=start,
        exclude_appointment_id=exclude_id,
    )
    return SlotUnavailableError(
        f"{practitioner.display_name} is already booked at {_local(start, practitioner)}.",
        extra={"conflicting_appointments": conflicts, "suggested_alternatives": alternatives},
    )


def _telehealth_url() -> str:
    base = ClinicSettings.load().telehealth_base_url.rstrip("/")
    return f"{base}/{connection.schema_name}-{uuid.uuid4().hex}"


class _SlotTaken(Exception):
    """Raised inside a booking's transaction when the exclusion constraint refuses the row;
    `_conflict_after_rollback` turns it into the 409."""

    def __init__(self, end: datetime):
        super().__init__("slot taken")
        self.end = end


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
    Publishes `appointment.booked` on commit.
    """
    if idempotency_key:
        existing = Appointment.objects.filter(
            booked_by=booked_by, idempotency_key=idempotency_key
        ).first()
        if existing is not None:
            return _idempotent_replay(existing, patient, practitioner, start)
    if overbook and not (booked_by is not None and booked_by.roles & OVERBOOK_ROLES):
        raise OverbookNotAllowedError("Only front desk, practitioners and clinic admins overbook.")
    # The practitioner's lock (see `_lock_practitioner`) comes with what the rules read.
    facts = selectors.slot_facts(
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
    )
    appointment = Appointment(
        practitioner=practitioner,
        patient=patient,
        appointment_type=appointment_type,
        location_id=check.location_id,
        start=start,
        end=check.end,
        blocked=_blocked_range(appointment_type, start, check.end),
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
            raise _SlotTaken(check.end) from error
        raise
    _units_reserve(appointment, by=booked_by)
    _record(
        appointment,
        "booked",
        booked_by,
        next_available=facts.next_available,
        source=source,
        overbooked=overbook,
    )
    return appointment


def _service_date(appointment: Appointment):
    return appointment.start.astimezone(ZoneInfo(appointment.practitioner.timezone)).date()


def _units_needed(appointment: Appointment) -> int:
    minutes = int((appointment.end - appointment.start).total_seconds() // 60)
    return ledger.units_for_visit(
        minutes=minutes, service_code=appointment.appointment_type.service_code
    )


def _no_authorization(appointment: Appointment, day) -> str:
    """Why no authorization covers this visit (for the refusal or the warning)."""
    code = appointment.appointment_type.service_code
    last = (
        AuthorizationLine.objects.filter(
            authorization__patient=appointment.patient, service_codes=code
        )
        .select_related("authorization")
        .order_by("-authorization__end_date")
        .first()
    )
    if last is not None and day > last.authorization.end_date:
        return (
            f"{day:%d %b %Y} is after the end of authorization {last.authorization.number} "
            f"({last.authorization.end_date:%d %b %Y})."
        )
    if last is not None and day < last.authorization.start_date:
        return (
            f"{day:%d %b %Y} is before authorization {last.authorization.number} starts "
            f"({last.authorization.start_date:%d %b %Y})."
        )
    return f"No active authorization covers {code.code} on {day:%d %b %Y}."


def _units_reserve(appointment: Appointment, *, by) -> None:
    """Reserve the visit's units on the patient's authorization, in the booking's transaction.

    No covering authorization: for a code that needs one, the clinic's policy refuses the
    booking (409) or books it with a warning on the appointment."""
    code = appointment.appointment_type.service_code
    if code is None:
        return
    day = _service_date(appointment)
    line = auth_selectors.line_for_visit(
        patient=appointment.patient, service_code=code, service_date=day
    )
    if line is None:
        if not code.requires_authorization:
            return
        reason = _no_authorization(appointment, day)
        if ClinicSettings.load().authorization_policy == ClinicSettings.AuthorizationPolicy.REFUSE:
            raise AuthorizationRequiredError(reason)
        appointment.authorization_warning = reason[:300]
        appointment.save(update_fields=["authorization_warning"])
        return
    appointment.unit_reservation = ledger.units_reserve(
        line=line,
        units=_units_needed(appointment),
        service_date=day,
        by=by,
        reference=f"appointment:{appointment.pk}",
    )
    appointment.save(update_fields=["unit_reservation"])


def _units_release(appointment: Appointment, *, by) -> None:
    if appointment.unit_reservation_id:
        ledger.units_release(reservation=appointment.unit_reservation, by=by)


def _units_follow(appointment: Appointment, *, by) -> None:
    """After a reschedule: keep the reservation if the new day is still inside its
    authorization (and week cap); otherwise move to another line, or refuse."""
    if appointment.unit_reservation_id is None:
        if appointment.appointment_type.service_code is not None:
            _units_reserve(appointment, by=by)
        return
    day = _service_date(appointment)
    try:
        appointment.unit_reservation = ledger.units_move(
            reservation=appointment.unit_reservation,
            service_date=day,
            units=_units_needed(appointment),
            by=by,
        )
    except (AuthorizationNotValidError, AuthorizationWeeklyCapError):
        ledger.units_release(reservation=appointment.unit_reservation, by=by)
        appointment.unit_reservation = None
        appointment.save(update_fields=["unit_reservation"])
        _units_reserve(appointment, by=by)


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


def _require(appointment: Appointment, allowed: tuple[str, ...], action: str) -> None:
    if appointment.status not in allowed:
        raise InvalidTransitionError(
            f"A {appointment.get_status_display().lower()} appointment cannot be {action}."
        )


def _is_late(appointment: Appointment, now: datetime) -> bool:
    window = timedelta(hours=ClinicSettings.load().late_cancel_hours)
    return appointment.start - now < window


@transaction.atomic
def appointment_cancel(
    *,
    appointment: Appointment,
    by=None,
    reason: str = "",
    allow_late: bool = True,
    now: datetime | None = None,
) -> Appointment:
    """Cancel a booked or checked-in visit. Inside the clinic's late-cancel window it is marked
    late; with `allow_late=False` (patients online) it is refused instead. Locks the row."""
    now = now or timezone.now()
    appointment = _lock(appointment)
    _require(appointment, (Status.BOOKED, Status.CHECKED_IN), "cancelled")
    late = _is_late(appointment, now) and appointment.start > now - timedelta(days=1)
    if late and not allow_late:
        hours = ClinicSettings.load().late_cancel_hours
        raise LateCancelError(
            f"Appointments can be cancelled online up to {hours} hours ahead. "
            "Please call the clinic."
        )
    appointment.status = Status.CANCELLED
    appointment.cancelled_at = now
    appointment.cancelled_by = by
    appointment.cancellation_reason = reason[:300]
    appointment.is_late_cancel = late
    appointment.save()
    _units_release(appointment, by=by)
    _record(appointment, "cancelled", by, reason=reason, late=late)
    return appointment


@transaction.atomic
def appointment_reschedule(
    *,
    appointment: Appointment,
    start: datetime,
    by=None,
    allow_late: bool = True,
    overbook: bool = False,
    now: datetime | None = None,
) -> Appointment:
    """Move a booked visit to `start`, atomically: the row is updated in place, so the new
    time is claimed (the exclusion constraint checks it against every other visit) in the same
    statement that frees the old one. A refused move leaves the original untouched."""
    now = now or timezone.now()
    appointment = _lock(appointment)
    _require(appointment, (Status.BOOKED,), "rescheduled")
    if not allow_late and _is_late(appointment, now):
        hours = ClinicSettings.load().late_cancel_hours
        raise LateCancelError(
            f"Appointments can be moved online up to {hours} hours ahead. Please call the clinic."
        )
    if overbook and not (by is not None and by.roles & OVERBOOK_ROLES):
        raise OverbookNotAllowedError("Only front desk, practitioners and clinic admins overbook.")
    check = slot_validate(
        patient=appointment.patient,
        practitioner=appointment.practitioner,
        appointment_type=appointment.appointment_type,
        start=start,
        location=appointment.location if not appointment.is_telehealth else None,
        telehealth=appointment.is_telehealth,
        overbook=overbook,
        now=now,
    )
    previous = {"start": appointment.start.isoformat(), "end": appointment.end.isoformat()}
    appointment.start = start
    appointment.end = check.end
    appointment.blocked = _blocked_range(appointment.appointment_type, start, check.end)
    appointment.location_id = check.location_id
    appointment.reschedule_count += 1
    if overbook:
        appointment.overbooked, appointment.overbooked_by = True, by
    _lock_practitioner(appointment.practitioner)
    try:
        with transaction.atomic():
            appointment.save()
    except IntegrityError as error:
        if _constraint_name(error).startswith("appointment_no_overlap"):
            raise _slot_unavailable(
                appointment_type=appointment.appointment_type,
                practitioner=appointment.practitioner,
                start=start,
                end=check.end,
                exclude_id=appointment.pk,
            ) from error
        raise
    _units_follow(appointment, by=by)
    _record(appointment, "rescheduled", by, previous=previous)
    return appointment


def _transition(
    appointment: Appointment,
    *,
    to: str,
    allowed: tuple[str, ...],
    action: str,
    by,
    not_before_start: bool,
    now: datetime | None,
) -> Appointment:
    now = now or timezone.now()
    appointment = _lock(appointment)
    _require(appointment, allowed, action)
    if not_before_start and now < appointment.start:
        raise InvalidTransitionError(f"A visit cannot be {action} before it starts.")
    appointment.status = to
    if to == Status.CHECKED_IN:
        appointment.checked_in_at = now
    if to == Status.COMPLETED:
        appointment.completed_at = now
    appointment.save()
    if appointment.unit_reservation_id and to == Status.COMPLETED:
        ledger.units_consume(reservation=appointment.unit_reservation, by=by)
    elif appointment.unit_reservation_id and to == Status.NO_SHOW:
        ledger.units_release(reservation=appointment.unit_reservation, by=by)
    _record(appointment, to, by)
    return appointment


@transaction.atomic
def appointment_check_in(*, appointment: Appointment, by=None, now=None) -> Appointment:
    return _transition(
        appointment,
        to=Status.CHECKED_IN,
        allowed=(Status.BOOKED,),
        action="checked in",
        by=by,
        not_before_start=False,
        now=now,
    )


@transaction.atomic
def appointment_complete(*, appointment: Appointment, by=None, now=None) -> Appointment:
    return _transition(
        appointment,
        to=Status.COMPLETED,
        allowed=(Status.BOOKED, Status.CHECKED_IN),
        action="completed",
        by=by,
        not_before_start=True,
        now=now,
    )


@transaction.atomic
def appointment_no_show(*, appointment: Appointment, by=None, now=None) -> Appointment:
    return _transition(
        appointment,
        to=Status.NO_SHOW,
        allowed=(Status.BOOKED,),
        action="marked as a no-show",
        by=by,
        not_before_start=True,
        now=now,
    )


def series_occurrences(*, rrule: str, first_start: datetime, tz: ZoneInfo) -> list[datetime]:
    """Expand an RFC 5545 rule from `first_start` in `tz` (wall-clock times kept across DST).
    Raises BookingRefusedError for a rule that is invalid, unbounded or too long."""
    rule_text = rrule.strip()
    if rule_text.upper().startswith("RRULE:"):
        rule_text = rule_text[6:]
    if "COUNT=" not in rule_text.upper() and "UNTIL=" not in rule_text.upper():
        raise _refuse("The rule needs COUNT or UNTIL.", "rrule-unbounded", "rrule")
    local_start = first_start.astimezone(tz)
    try:
        rule = rrulestr(rule_text, dtstart=local_start.replace(tzinfo=None))
        occurrences = []
        for moment in rule:
            occurrences.append(moment.replace(tzinfo=tz))
            if len(occurrences) > MAX_SERIES_OCCURRENCES:
                raise _refuse(
                    f"A series has at most {MAX_SERIES_OCCURRENCES} occurrences.",
                    "rrule-too-long",
                    "rrule",
                )
    except (ValueError, TypeError) as error:
        raise _refuse(f"Invalid recurrence rule: {error}", "rrule-invalid", "rrule") from error
    return occurrences


@dataclass
class SeriesResult:
    series: AppointmentSeries | None
    booked: list[Appointment]
    skipped: list[dict]


@transaction.atomic
def appointment_series_book(
    *,
    patient: Patient,
    practitioner: Practitioner,
    appointment_type: AppointmentType,
    first_start: datetime,
    rrule: str,
    booked_by=None,
    source: str = Appointment.Source.STAFF,
    timezone_name: str | None = None,
    location: Location | None = None,
    telehealth: bool | None = None,
    partial: bool = False,
    now: datetime | None = None,
) -> SeriesResult:
    """Book every occurrence of a recurring rule, all or nothing (default): one refused
    occurrence refuses the series (409 listing each with alternatives) and nothing is written.
    With `partial`, the free occurrences are booked and the others reported."""
    tz = ZoneInfo(timezone_name or practitioner.timezone)
    occurrences = series_occurrences(rrule=rrule, first_start=first_start, tz=tz)
    series = AppointmentSeries.objects.create(
        patient=patient,
        practitioner=practitioner,
        appointment_type=appointment_type,
        rrule=rrule,
        first_start=first_start,
        timezone=tz.key,
        created_by=booked_by,
    )
    booked, skipped = [], []
    for moment in occurrences:
        try:
            booked.append(
                appointment_book(
                    patient=patient,
                    practitioner=practitioner,
                    appointment_type=appointment_type,
                    start=moment.astimezone(ZoneInfo("UTC")),
                    booked_by=booked_by,
                    source=source,
                    location=location,
                    telehealth=telehealth,
                    series=series,
                    now=now,
                )
            )
        except ApplicationError as error:  # any refusal of one occurrence
            skipped.append(
                {
                    "start": moment.isoformat(),
                    "code": error.code,
                    "detail": error.detail,
                    "conflicting_appointments": error.extra.get("conflicting_appointments", []),
                    "suggested_alternatives": error.extra.get("suggested_alternatives", [])[:3],
                }
            )
    if skipped and not partial:
        raise SeriesConflictError(
            f"{len(skipped)} of {len(occurrences)} occurrences cannot be booked; nothing was "
            "booked. Send partial=true to book the free ones.",
            extra={"occurrences": skipped},
        )
    if not booked:
        transaction.set_rollback(True)
        return SeriesResult(series=None, booked=[], skipped=skipped)
    return SeriesResult(series=series, booked=booked, skipped=skipped)


@transaction.atomic
def appointment_series_cancel(
    *, series: AppointmentSeries, by=None, reason: str = "", after: datetime | None = None
) -> list[Appointment]:
    """Cancel the series' booked occurrences from `after` (default: now) on."""
    after = after or timezone.now()
    cancelled = []
    for appointment in series.appointments.filter(status=Status.BOOKED, start__gte=after):
        cancelled.append(appointment_cancel(appointment=appointment, by=by, reason=reason))
    return cancelled


def next_available_refresh(*, practitioner_ids: list[int] | None = None, days: int = 60) -> int:
    """Recompute the earliest free slot of these practitioners (default: all active ones),
    for each one's shortest active appointment type. One availability pass per distinct type,
    so the cost does not grow with the number of practitioners' queries. Returns rows written.
    The clinic's cached answers go stale only if a slot moved."""
    from collections import defaultdict

    now = timezone.now()
    practitioners = Practitioner.objects.filter(is_active=True)
    if practitioner_ids is not None:
        practitioners = practitioners.filter(pk__in=practitioner_ids)
    ids = list(practitioners.values_list("pk", flat=True))
    if not ids:
        return 0
    shortest: dict[int, AppointmentType] = {}
    for t in (
        AppointmentType.objects.filter(is_active=True, practitioners__in=ids)
        .annotate(practitioner_id=models.F("practitioners"))
        .order_by("duration_minutes", "id")
    ):
        shortest.setdefault(t.practitioner_id, t)
    by_type: dict[int, list[int]] = defaultdict(list)
    types: dict[int, AppointmentType] = {}
    for practitioner_id, t in shortest.items():
        by_type[t.pk].append(practitioner_id)
        types[t.pk] = t
    found: dict[int, tuple] = {pk: (None, None) for pk in ids}
    for type_id, members in by_type.items():
        for result in selectors.availability(
            appointment_type=types[type_id],
            start=now,
            end=now + timedelta(days=days),
            practitioner_ids=members,
            limit_per_practitioner=1,
        ):
            if result.slots:
                found[result.practitioner.pk] = (result.slots[0].start, type_id)
    before = {
        pk: (start, type_id)
        for pk, start, type_id in NextAvailable.objects.filter(practitioner_id__in=ids).values_list(
            "practitioner_id", "start", "appointment_type_id"
        )
    }
    rows = [
        NextAvailable(practitioner_id=pk, start=start, appointment_type_id=type_id, computed_at=now)
        for pk, (start, type_id) in found.items()
    ]
    NextAvailable.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["practitioner"],
        update_fields=["start", "appointment_type", "computed_at"],
    )
    if any(before.get(pk) != value for pk, value in found.items()):
        clinic_data_changed()  # the search shows these
    return len(rows)


NEXT_AVAILABLE_MAX_AGE = timedelta(days=1)  # the stale rows' safety net (see below)


def _next_available_stale_sql() -> str:
    """Active practitioners whose next-available row the clock has overtaken, or will by the
    first `%s` (a moment a little after the next beat): no row, no slot (the 60-day window
    and the horizon move on, one may appear), no type, a slot its type's minimum notice will no
    longer allow, or a row computed before the second `%s` (a safety net). Every other row
    stays right as time passes: a free slot stays the earliest until a schedule change, and
    each change queues its own refresh."""
    return (
        f"SELECT p.id FROM {{schema}}.{Practitioner._meta.db_table} p "
        f"LEFT JOIN {{schema}}.{NextAvailable._meta.db_table} n ON n.practitioner_id = p.id "
        f"LEFT JOIN {{schema}}.{AppointmentType._meta.db_table} t "
        "ON t.id = n.appointment_type_id "
        "WHERE p.is_active AND (n.start IS NULL OR t.id IS NULL "
        "OR n.start < %s + make_interval(mins => t.min_notice_minutes) OR n.computed_at < %s)"
    )


def _next_available_stale_params() -> list:
    margin = timedelta(seconds=2 * settings.NEXT_AVAILABLE_REFRESH_SECONDS)
    now = timezone.now()
    return [now + margin, now - NEXT_AVAILABLE_MAX_AGE]


def next_available_refresh_stale() -> int:
    """The periodic refresh, for this clinic: only the rows `_next_available_stale_sql` picks
    (recomputing every practitioner every few minutes cost the bench clinic's 200 a quarter of
    a CPU second per beat, which stalled bookings for a tenth of a second). Returns rows
    written."""
    sql = _next_available_stale_sql().format(schema=quote_schema_name(connection.schema_name))
    with connection.cursor() as cursor:
        cursor.execute(sql, _next_available_stale_params())
        ids = [row[0] for row in cursor.fetchall()]
    return next_available_refresh(practitioner_ids=ids) if ids else 0


def clinics_with_stale_next_available(schemas: list[str]) -> list[str]:
    """The schemas, of those given, where `next_available_refresh_stale` has work: one query
    per 200 clinics."""
    return schemas_where(
        schemas,
        table=NextAvailable._meta.db_table,
        sql=_next_available_stale_sql(),
        params=_next_available_stale_params(),
    )

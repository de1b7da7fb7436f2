"""Every booking rule but the overlap (which the database's exclusion constraint owns):
`slot_validate`, and `slot_facts`, what it reads about one practitioner and one slot in one
round trip. A broken rule raises BookingRefusedError naming the field at fault (422)."""

import functools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone

from practice import formats
from practice.models import ClinicSettings, Location, Patient, Practitioner

from .availability import Closed, closed_on, covering_block
from .errors import BookingRefusedError
from .models import (
    AppointmentType,
    Closure,
    NextAvailable,
    NextAvailableAt,
    TimeOff,
    WorkingHours,
)
from .next_available.refresh import NextAvailableReach


@dataclass(frozen=True)
class SlotFacts:
    """What the booking rules read about one practitioner and one slot."""

    offered: bool  # the practitioner offers the appointment type
    away: bool  # time off overlaps the slot
    hours: list[WorkingHours]  # all the practitioner's weekly blocks
    next_available: NextAvailableReach
    closures: tuple[Closed, ...] = ()  # those touching the slot's days


@functools.cache
def _slot_facts_sql(lock: bool) -> str:
    offers = AppointmentType.practitioners.through._meta.db_table
    return f"""
        SELECT
          EXISTS (SELECT 1 FROM {offers} o
                  WHERE o.appointmenttype_id = %(type)s AND o.practitioner_id = p.id),
          EXISTS (SELECT 1 FROM {TimeOff._meta.db_table} a
                  WHERE a.practitioner_id = p.id AND a.start < %(end)s AND a."end" > %(start)s),
          (SELECT json_agg(json_build_array(h.weekday, h.start_time, h.end_time, h.location_id,
                                            h.effective_from, h.effective_to))
             FROM {WorkingHours._meta.db_table} h WHERE h.practitioner_id = p.id),
          (SELECT json_build_array(n.start, t.duration_minutes + t.buffer_before_minutes
                                            + t.buffer_after_minutes,
                                   (SELECT max(a.start) FROM {NextAvailableAt._meta.db_table} a
                                     WHERE a.practitioner_id = p.id),
                                   EXISTS (SELECT 1 FROM {NextAvailableAt._meta.db_table} a
                                            WHERE a.practitioner_id = p.id AND a.start IS NULL))
             FROM {NextAvailable._meta.db_table} n
             LEFT JOIN {AppointmentType._meta.db_table} t ON t.id = n.appointment_type_id
             WHERE n.practitioner_id = p.id),
          (SELECT json_agg(json_build_array(c.start_date, c.end_date, c.location_id, c.name))
             FROM {Closure._meta.db_table} c
             WHERE c.start_date <= %(last_day)s AND c.end_date >= %(first_day)s)
        FROM {Practitioner._meta.db_table} p WHERE p.id = %(practitioner)s
        {"FOR NO KEY UPDATE" if lock else ""}"""


def slot_facts(
    *,
    practitioner: Practitioner,
    appointment_type: AppointmentType,
    start: datetime,
    end: datetime,
    lock: bool = False,
) -> SlotFacts:
    """Everything `slot_validate` reads from the database, in one round trip
    (booking is the hottest write: the ORM spent more CPU building four queries than
    PostgreSQL spent answering them). `lock` also takes the practitioner row's NO KEY UPDATE
    lock that queues writers of one schedule (`services._lock_practitioner`)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _slot_facts_sql(lock),
            {
                "practitioner": practitioner.pk,
                "type": appointment_type.pk,
                "start": start,
                "end": end,
                # a day either side: the slot's day on any wall calendar
                "first_day": (start - timedelta(days=1)).date(),
                "last_day": (end + timedelta(days=1)).date(),
            },
        )
        offered, away, hours, next_available, closures = cursor.fetchone()
    return SlotFacts(
        offered=offered,
        away=away,
        hours=[
            WorkingHours(
                practitioner_id=practitioner.pk,
                weekday=weekday,
                start_time=time.fromisoformat(block_start),
                end_time=time.fromisoformat(block_end),
                location_id=location_id,
                effective_from=date.fromisoformat(since) if since else None,
                effective_to=date.fromisoformat(until) if until else None,
            )
            for weekday, block_start, block_end, location_id, since, until in hours or ()
        ],
        next_available=NextAvailableReach(
            start=datetime.fromisoformat(next_available[0]) if next_available[0] else None,
            reach=timedelta(minutes=next_available[1]) if next_available[1] else None,
            latest=datetime.fromisoformat(next_available[2]) if next_available[2] else None,
            location_without_slot=bool(next_available[3]),
        )
        if next_available
        else NextAvailableReach(None, None),
        closures=tuple(
            Closed(date.fromisoformat(first), date.fromisoformat(last), location_id, name)
            for first, last, location_id, name in closures or ()
        ),
    )


def _refuse(detail: str, code: str, field: str) -> BookingRefusedError:
    return BookingRefusedError(detail, code=code, field=field)


def wall_clock(moment: datetime, practitioner: Practitioner) -> str:
    """`moment` as the practitioner's wall clock reads it, for messages."""
    zone = ZoneInfo(practitioner.timezone)
    when = formats.datetime_format(moment, zone=zone, locale=formats.style_current().locale)
    return f"{when} {moment.astimezone(zone).tzname()}"


def books_as_staff(user, patient: Patient) -> bool:
    """Whether `user` books (or moves) `patient`'s visit as the clinic's staff, held to the
    clinic's `staff_min_notice_minutes` instead of the visit type's minimum notice (which is
    the patients' rule): they hold the booking permission and are not the patient themselves.
    Nobody (None: the demo, a data fix) books under the patients' rules."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return patient.user_id != user.pk and user.has_perm("scheduling.book_appointment")


def _notice_refusal(
    appointment_type: AppointmentType, start: datetime, now: datetime, *, staff: bool
) -> BookingRefusedError | None:
    if staff:
        minutes = ClinicSettings.load().staff_min_notice_minutes
        if start < now + timedelta(minutes=minutes):
            return _refuse(
                f"Staff book at least {minutes} minutes ahead (the clinic's setting).",
                "inside-staff-notice",
                "start",
            )
        return None
    if start < now + timedelta(minutes=appointment_type.min_notice_minutes):
        hours = appointment_type.min_notice_minutes / 60
        return _refuse(
            f"{appointment_type.name} must be booked at least {hours:g} hours ahead.",
            "inside-minimum-notice",
            "start",
        )
    return None


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
    facts: SlotFacts | None = None,
    staff: bool = False,
) -> SlotCheck:
    """Every booking rule except the overlap (which the database owns). Raises
    BookingRefusedError naming the field at fault. `facts`: as read by `slot_facts`
    for this slot, if already read. `staff` (`books_as_staff`): the clinic's staff notice
    applies instead of the type's minimum notice, so the desk books walk-ins and same-day
    visits."""
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
        facts = slot_facts(
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
    if refusal := _notice_refusal(appointment_type, start, now, staff=staff):
        raise refusal
    if start > now + timedelta(days=appointment_type.horizon_days):
        raise _refuse(
            f"{appointment_type.name} can be booked at most "
            f"{appointment_type.horizon_days} days ahead.",
            "beyond-horizon",
            "start",
        )
    if facts.away:
        raise _refuse(
            f"{practitioner.display_name} is away at {wall_clock(start, practitioner)}.",
            "practitioner-time-off",
            "start",
        )
    location_id = location.pk if location else None
    block = covering_block(
        practitioner=practitioner,
        start=start,
        end=end,
        location_id=location_id,
        hours=facts.hours,
    )
    local_day = start.astimezone(ZoneInfo(practitioner.timezone)).date()
    closed_at = location_id if location_id is not None else (block[2] if block else None)
    if closure := closed_on(facts.closures, local_day, closed_at):
        # Closed even to an overbook: nobody is there to see the patient.
        where = "This location is" if closure.location_id else "The clinic is"
        raise _refuse(
            f"{where} closed on {formats.message_date(local_day, style='long')} ({closure.name}).",
            "clinic-closed",
            "start",
        )
    if block is None and not overbook:
        where = f" at {location.name}" if location else ""
        when = wall_clock(start, practitioner)
        raise _refuse(
            f"{practitioner.display_name} does not work{where} at {when}.",
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

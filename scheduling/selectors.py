"""Reads shared by the API, the patient pages, the admin, the schedule board and smart booking:
appointment lists, the staff's scope, a patient's visits, the board's columns. Free slots are
`availability`'s.
"""

import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Model, Prefetch, QuerySet
from django.utils import timezone

from clinic.permissions import ALL, permission_scopes
from practice.models import Location, Patient, Practitioner
from practice.selectors import PractitionerSearch

from .availability import Closed, Slot, availability, covering_block, working_blocks
from .models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentType,
    SmartBookingJob,
    TimeOff,
    WorkingHours,
)


@functools.cache
def _columns_of(model: type[Model]) -> tuple[list[str], int, str]:
    fields = model._meta.concrete_fields
    assert not any(f.get_db_converters(connection) for f in fields), model
    pk = model._meta.pk
    assert pk is not None and pk.column is not None, model  # a concrete model's
    return [f.attname for f in fields], fields.index(pk), pk.column


def rows_by_pk(*wanted: tuple[type[Model], int]) -> list[Model | None]:
    """Instances of several models, each by primary key, in one round trip (the ORM takes
    one query per table, and building each cost more CPU than PostgreSQL spent on it). None
    for a key that matches no row. For models whose fields need no conversion from the
    database (plain columns; checked)."""
    columns: list[str] = []
    joins: list[str] = []
    params: list[int] = []
    for i, (model, pk) in enumerate(wanted):
        attnames, _, pk_column = _columns_of(model)
        columns += [f't{i}."{f.column}"' for f in model._meta.concrete_fields]
        joins.append(f'LEFT JOIN {model._meta.db_table} t{i} ON t{i}."{pk_column}" = %s')
        params.append(pk)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(columns)} FROM (VALUES (1)) one {' '.join(joins)}", params
        )
        row = cursor.fetchone()
    found: list[Model | None] = []
    at = 0
    for model, _ in wanted:
        attnames, pk_index, _ = _columns_of(model)
        values = row[at : at + len(attnames)]
        at += len(attnames)
        found.append(
            None if values[pk_index] is None else model.from_db(connection.alias, attnames, values)
        )
    return found


def appointment_list(*, patient: Patient | None = None) -> QuerySet[Appointment]:
    """Appointments with what a list shows, N+1 free (callers narrow them to the caller's
    scope: practice.selectors.rows_in_scope)."""
    qs = Appointment.objects.select_related(
        "practitioner", "patient", "appointment_type", "location"
    )
    if patient is not None:
        qs = qs.filter(patient=patient)
    return qs


def patient_for_user(user) -> Patient | None:
    return Patient.objects.filter(user=user).first() if user.is_authenticated else None


def appointments_overlapping() -> list[tuple[int, int]]:
    """Pairs of active, non-overbooked appointments of one practitioner whose blocked ranges
    overlap. Must be empty, always (tests and benchmarks check it)."""
    from django.db import connection

    active = ", ".join(f"'{status}'" for status in ACTIVE_STATUSES)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT a.id, b.id FROM scheduling_appointment a
            JOIN scheduling_appointment b
              ON a.practitioner_id = b.practitioner_id AND a.id < b.id AND a.blocked && b.blocked
            WHERE a.status IN ({active}) AND b.status IN ({active})
              AND NOT a.overbooked AND NOT b.overbooked
            """
        )
        return [tuple(row) for row in cursor.fetchall()]


def _location_param(params) -> int | None:
    raw = params.get("location")
    if not raw:
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        from django.core.exceptions import ValidationError

        raise ValidationError({"location": "Give a location id."}) from None


# The earliest free slot of the outer practitioner row (`practice_practitioner`), anywhere
# or at one location; parameters: (now) or (location id, now).
_NEXT_AVAILABLE = """
    SELECT na.start FROM scheduling_nextavailable na
     WHERE na.practitioner_id = practice_practitioner.id AND na.start > %s
"""
_NEXT_AVAILABLE_AT = """
    SELECT na.start FROM scheduling_nextavailableat na
     WHERE na.practitioner_id = practice_practitioner.id AND na.location_id = %s
       AND na.start > %s
"""
# Working hours of the outer practitioner row held at a location, current or to come;
# parameters: location id, today.
_HOURS_AT = """
    EXISTS (SELECT 1 FROM scheduling_workinghours wh
             WHERE wh.practitioner_id = practice_practitioner.id AND wh.location_id = %s
               AND (wh.effective_to IS NULL OR wh.effective_to >= %s))
"""


def search_with_next_available(search: PractitionerSearch, params: Mapping[str, str]) -> None:
    """The practitioner search's `next_available` (earliest free slot, kept by
    `next_available.refresh`) and its `available_before=<datetime>` filter: one
    correlated subquery inside the search's own statement, never a query per practitioner.
    With `location=`, the earliest free slot at that location (`NextAvailableAt`, kept by the
    same refresh), and `available_before` filters on that one."""
    from django.core.exceptions import ValidationError
    from django.utils.dateparse import parse_date, parse_datetime

    location_id = _location_param(params)
    now = timezone.now()
    soonest_params: tuple[object, ...]
    if location_id is None:
        soonest, soonest_params = _NEXT_AVAILABLE, (now,)
    else:
        soonest, soonest_params = _NEXT_AVAILABLE_AT, (location_id, now)
    search.annotate("next_available", soonest, soonest_params)
    raw = params.get("available_before")
    if raw:
        try:  # well-formed but impossible ("2026-02-30") raises
            moment, day = parse_datetime(raw), parse_date(raw)
        except ValueError:
            moment = day = None
        if moment is None and day is not None:
            moment = datetime.combine(day, datetime.min.time(), ZoneInfo("UTC"))
        if moment is None:
            raise ValidationError({"available_before": "Give an ISO date or datetime."})
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, ZoneInfo("UTC"))
        search.filter(f"({soonest}) < %s", (*soonest_params, moment))


def search_slots_at_location(search: PractitionerSearch, params: Mapping[str, str]) -> None:
    """The practitioner search's `location` means slots there: a practitioner is listed only
    when some of their working hours (current or to come) are held at that location, not
    merely because they are linked to it (practice's own filter, which this narrows). One
    `EXISTS` in the search's own statement."""
    location_id = _location_param(params)
    if location_id is not None:
        search.filter(_HOURS_AT, (location_id, timezone.localdate()))


# Patient pages --------------------------------------------------------------------------------


def appointment_types_offered(*, practitioner: Practitioner) -> QuerySet[AppointmentType]:
    """The active appointment types a practitioner offers, shortest first."""
    return AppointmentType.objects.filter(is_active=True, practitioners=practitioner).order_by(
        "duration_minutes", "name", "id"
    )


def next_free_slots(
    *,
    practitioner_ids: Sequence[int],
    appointment_type: AppointmentType | None = None,
    days: int = 60,
    now: datetime | None = None,
    location_id: int | None = None,
) -> dict[int, tuple[Slot, AppointmentType]]:
    """The earliest free slot of each practitioner within `days`, with the type it is for:
    `appointment_type` when given, otherwise the shortest active type the practitioner offers
    (the one that fits most gaps). One query for the types, then one availability pass (one
    round trip) per distinct type involved — in practice one or two — whatever the number of
    practitioners. With `location_id`, the earliest free slot at that location."""
    now = now or timezone.now()
    if not practitioner_ids:
        return {}
    if appointment_type is not None:
        groups = {appointment_type: list(practitioner_ids)}
    else:
        through = AppointmentType.practitioners.through
        rows = (
            through.objects.filter(
                practitioner_id__in=list(practitioner_ids), appointmenttype__is_active=True
            )
            .select_related("appointmenttype")
            .order_by(
                "practitioner_id",
                "appointmenttype__duration_minutes",
                "appointmenttype__name",
                "appointmenttype_id",
            )
        )
        shortest: dict[int, AppointmentType] = {}
        for row in rows:
            shortest.setdefault(row.practitioner_id, row.appointmenttype)
        groups = defaultdict(list)
        for practitioner_id, kind in shortest.items():
            groups[kind].append(practitioner_id)
    found: dict[int, tuple[Slot, AppointmentType]] = {}
    for kind, ids in groups.items():
        for result in availability(
            appointment_type=kind,
            start=now,
            end=now + timedelta(days=days),
            practitioner_ids=ids,
            location_id=location_id,
            now=now,
            limit_per_practitioner=1,
        ):
            if result.slots:
                found[result.practitioner.pk] = (result.slots[0], kind)
    return found


def patient_appointments(
    *, patient: Patient, now: datetime | None = None, past_limit: int = 50
) -> tuple[list[Appointment], list[Appointment]]:
    """A patient's visits: (upcoming, past). Upcoming are booked or checked-in visits that have
    not ended, soonest first; past are the rest (ended, cancelled, no-show), latest first, at
    most `past_limit`. Two queries."""
    now = now or timezone.now()
    visits = appointment_list(patient=patient)
    upcoming_filter = {"status__in": ("booked", "checked_in"), "end__gt": now}
    upcoming = list(visits.filter(**upcoming_filter).order_by("start", "id"))
    past = list(visits.exclude(**upcoming_filter).order_by("-start", "-id")[:past_limit])
    return upcoming, past


def slot_location(
    *, practitioner: Practitioner, appointment_type: AppointmentType, start: datetime
) -> Location | None:
    """Where an in-person visit at `start` would take place: the location of the working-hours
    block that holds it (None for telehealth-only hours or outside hours). Two queries."""
    end = start + timedelta(minutes=appointment_type.duration_minutes)
    block = covering_block(practitioner=practitioner, start=start, end=end, location_id=None)
    if block is None or block[2] is None:
        return None
    return Location.objects.filter(pk=block[2], is_active=True).first()


def smart_job_get(*, job_id) -> SmartBookingJob | None:
    return SmartBookingJob.objects.select_related("patient").filter(pk=job_id).first()


# --- Staff views (admin, schedule board) ---------------------------------------------------
# Which rows a user reaches is the grants' row scope (practice.selectors.rows_in_scope).


def sees_own_schedule_only(user) -> bool:
    """Whether `user` sees less than the whole clinic's schedule (a practitioner: their own
    column), by the scope of their `scheduling.view_appointment`."""
    return ALL not in permission_scopes(user, "scheduling.view_appointment")


def patients_seen_by(user) -> QuerySet:
    """The ids of the patients a practitioner's user sees: those with a visit in their column,
    past or coming (the OWN scope of patient rows; registered with practice at start)."""
    return Appointment.objects.filter(practitioner__user=user).values("patient_id")


@dataclass
class BoardColumn:
    """One practitioner's part of the board between two moments (all aware datetimes)."""

    practitioner: Practitioner
    working: list[tuple[datetime, datetime, int | None]]
    time_off: list[TimeOff]
    appointments: list[Appointment]


def schedule_board(
    *,
    start: datetime,
    end: datetime,
    practitioners: QuerySet[Practitioner],
    location_id: int | None = None,
    include_cancelled: bool = False,
    closures: Sequence[Closed] = (),
) -> list[BoardColumn]:
    """Working hours (expanded in each practitioner's zone; only those at `location_id` when
    given; none on the days `closures` close), time off and appointments of `practitioners`
    between `start` and `end`. Five queries, whatever the number of practitioners or days."""
    hours = WorkingHours.objects.all()
    if location_id is not None:
        hours = hours.filter(location_id=location_id)
    practitioner_list = list(
        practitioners.prefetch_related(
            Prefetch("working_hours", queryset=hours),
            Prefetch(
                "appointment_types",
                queryset=AppointmentType.objects.filter(is_active=True).order_by("name"),
            ),
        )
    )
    ids = [p.pk for p in practitioner_list]
    time_off: dict[int, list[TimeOff]] = defaultdict(list)
    for off in TimeOff.objects.filter(practitioner_id__in=ids, start__lt=end, end__gt=start):
        time_off[off.practitioner_id].append(off)
    appointments: dict[int, list[Appointment]] = defaultdict(list)
    rows = Appointment.objects.filter(
        practitioner_id__in=ids, start__lt=end, end__gt=start
    ).select_related(
        "patient", "appointment_type", "location", "unit_reservation__line__authorization"
    )
    if not include_cancelled:
        rows = rows.exclude(status=Appointment.Status.CANCELLED)
    for appointment in rows.order_by("start", "id"):
        appointments[appointment.practitioner_id].append(appointment)
    columns = []
    for practitioner in practitioner_list:
        tz = ZoneInfo(practitioner.timezone)
        working = [
            (max(lo, start), min(hi, end), location)
            for lo, hi, location in working_blocks(
                practitioner.working_hours.all(), tz=tz, start=start, end=end, closures=closures
            )
        ]
        columns.append(
            BoardColumn(
                practitioner=practitioner,
                working=sorted(working, key=lambda block: block[0]),
                time_off=time_off.get(practitioner.pk, []),
                appointments=appointments.get(practitioner.pk, []),
            )
        )
    return columns

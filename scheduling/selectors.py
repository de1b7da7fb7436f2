"""Reads shared by the API, the portal, the admin board and smart booking.

Availability runs a fixed number of queries whatever the number of practitioners or days:
practitioners, working hours, time off, busy ranges, clinic settings. The rest is interval
arithmetic in Python, with working hours expanded day by day in each practitioner's zone.
"""

import bisect
import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from operator import attrgetter
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import BigIntegerField, Func, Model, Prefetch, QuerySet
from django.utils import timezone

from clinic.permissions import BILLER, CLINIC_ADMIN, FRONT_DESK, INTEGRATOR, PRACTITIONER
from practice.models import ClinicSettings, Location, Patient, Practitioner

from .models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentType,
    NextAvailable,
    SmartBookingJob,
    TimeOff,
    WorkingHours,
)

UTC = ZoneInfo("UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class Slot(NamedTuple):
    """A free slot. A named tuple: availability makes thousands per answer (a frozen
    dataclass cost three times as much to create)."""

    practitioner_id: int
    start: datetime  # aware, UTC
    end: datetime
    location_id: int | None


@dataclass
class PractitionerSlots:
    practitioner: Practitioner
    slots: list[Slot] = field(default_factory=list)


def practitioners_offering(
    *,
    appointment_type: AppointmentType,
    practitioner_ids: Sequence[int] | None = None,
    specialty: str | None = None,
    telehealth: bool | None = None,
) -> QuerySet[Practitioner]:
    """Active practitioners who offer `appointment_type` (and its mode)."""
    qs = Practitioner.objects.filter(is_active=True, appointment_types=appointment_type)
    if practitioner_ids is not None:
        qs = qs.filter(pk__in=practitioner_ids)
    if specialty:
        qs = qs.filter(specialties__slug=specialty)
    needs_telehealth = appointment_type.mode == AppointmentType.Mode.TELEHEALTH or bool(telehealth)
    if needs_telehealth:
        qs = qs.filter(offers_telehealth=True)
    return qs.distinct().order_by("display_name", "id")


def _local_days(start: datetime, end: datetime, tz: ZoneInfo) -> Iterable[date]:
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    while day <= last:
        yield day
        day += timedelta(days=1)


def _us(moment: datetime) -> int:
    """Microseconds since the epoch: exact integer arithmetic for the slot loop."""
    return (moment - _EPOCH) // _MICROSECOND


def _merge(intervals: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Sorted, merged open intervals (microseconds) as two parallel lists (starts, ends) for
    bisecting."""
    starts: list[int] = []
    ends: list[int] = []
    for lo, hi in sorted(intervals):
        if ends and lo < ends[-1]:  # open intervals: touching ones stay apart
            ends[-1] = max(ends[-1], hi)
        else:
            starts.append(lo)
            ends.append(hi)
    return starts, ends


def working_blocks(
    hours: Iterable[WorkingHours], *, tz: ZoneInfo, start: datetime, end: datetime
) -> list[tuple[datetime, datetime, int | None]]:
    """Absolute (UTC) working intervals between start and end, from weekly wall-clock hours.

    Each local date is combined with the local times in the practitioner's zone, so a 09:00
    start is 09:00 local on both DST change days.
    """
    by_weekday: dict[int, list[WorkingHours]] = defaultdict(list)
    for block in hours:
        by_weekday[block.weekday].append(block)
    blocks = []
    for day in _local_days(start, end, tz):
        for block in by_weekday.get(day.weekday(), ()):
            if block.effective_from and day < block.effective_from:
                continue
            if block.effective_to and day > block.effective_to:
                continue
            block_start = datetime.combine(day, block.start_time, tzinfo=tz)
            block_end = datetime.combine(day, block.end_time, tzinfo=tz)
            if block_end > start and block_start < end:
                blocks.append((block_start, block_end, block.location_id))
    return blocks


def _slot_starts(
    block_start: datetime, block_end: datetime, step: timedelta, duration: timedelta
) -> Iterable[datetime]:
    """Slot starts on the block's wall-clock grid (local arithmetic, then back to aware)."""
    tz = block_start.tzinfo
    local = block_start.replace(tzinfo=None)
    while True:
        moment = local.replace(tzinfo=tz)
        if moment + duration > block_end:
            return
        yield moment
        local += step


def availability(
    *,
    appointment_type: AppointmentType,
    start: datetime,
    end: datetime,
    practitioner_ids: Sequence[int] | None = None,
    specialty: str | None = None,
    location_id: int | None = None,
    telehealth: bool | None = None,
    now: datetime | None = None,
    limit_per_practitioner: int | None = None,
    exclude_appointment_id: int | None = None,
) -> list[PractitionerSlots]:
    """Free slots per practitioner between `start` and `end` (aware datetimes).

    Honours working hours (in the practitioner's zone), time off, existing active appointments
    widened by both visits' buffers, minimum notice, booking horizon and location. The slot
    grid step is the clinic's setting. Five queries, whatever the number of practitioners or
    days.
    """
    query = availability_query(
        appointment_type=appointment_type,
        start=start,
        end=end,
        practitioner_ids=practitioner_ids,
        specialty=specialty,
        location_id=location_id,
        telehealth=telehealth,
        now=now,
        exclude_appointment_id=exclude_appointment_id,
    )
    return query.compute(limit_per_practitioner=limit_per_practitioner) if query else []


def _whole_minute(moment: datetime, *, up: bool) -> datetime:
    """`moment` rounded to a whole minute (in UTC: no wall-clock arithmetic near DST)."""
    utc = moment.astimezone(UTC)
    rest = utc - utc.replace(second=0, microsecond=0)
    if not rest:
        return moment
    return utc - rest + (timedelta(minutes=1) if up else timedelta())


@dataclass
class AvailabilityQuery:
    """Everything an availability answer depends on, read in five queries. `compute()` turns
    it into slots without the database; `key` identifies it: two queries with equal keys have
    equal answers (the API reuses answers by it).

    The window is in whole minutes (earliest rounded up, latest start down): slot starts are
    whole minutes, so no answer changes, but the inputs stay the same for a minute."""

    appointment_type: AppointmentType
    earliest: datetime
    latest_start: datetime
    end: datetime
    step: timedelta
    practitioners: list[Practitioner]
    forbidden: dict[int, list[tuple[int, int]]]  # per practitioner: open intervals, µs

    @functools.cached_property
    def key(self) -> tuple:
        return (
            self.appointment_type.pk,
            self.appointment_type.duration_minutes,
            _us(self.earliest),
            _us(self.latest_start),
            _us(self.end),
            self.step,
            tuple(
                (
                    p.pk,
                    p.timezone,
                    p.display_name,
                    tuple(
                        (
                            h.weekday,
                            h.start_time,
                            h.end_time,
                            h.location_id,
                            h.effective_from,
                            h.effective_to,
                        )  # fmt: skip
                        for h in p.working_hours.all()
                    ),
                    tuple(sorted(self.forbidden.get(p.pk, ()))),
                )
                for p in self.practitioners
            ),
        )

    def compute(self, *, limit_per_practitioner: int | None = None) -> list[PractitionerSlots]:
        duration, step = timedelta(minutes=self.appointment_type.duration_minutes), self.step
        earliest_us, latest_us = _us(self.earliest), _us(self.latest_start)
        results = []
        bisect_left = bisect.bisect_left
        for practitioner in self.practitioners:
            pk = practitioner.pk
            lows, highs = _merge(self.forbidden.get(pk, []))
            found = PractitionerSlots(practitioner)
            slots = found.slots
            seen: set[int] = set()
            blocks = working_blocks(
                practitioner.working_hours.all(),
                tz=ZoneInfo(practitioner.timezone),
                start=self.earliest,
                end=self.end,
            )
            for block_start, block_end, location in sorted(blocks, key=lambda b: b[0]):
                for moment in _block_grid(block_start, block_end, step, duration):
                    if moment < earliest_us or moment in seen:
                        continue
                    if moment > latest_us:
                        break
                    index = bisect_left(lows, moment) - 1
                    if index >= 0 and moment < highs[index]:
                        continue  # strictly inside a forbidden interval
                    seen.add(moment)
                    slot_start = _EPOCH + timedelta(microseconds=moment)
                    slots.append(Slot(pk, slot_start, slot_start + duration, location))
                    if limit_per_practitioner and len(slots) >= limit_per_practitioner:
                        break
                if limit_per_practitioner and len(slots) >= limit_per_practitioner:
                    break
            slots.sort(key=_SLOT_START)
            results.append(found)
        return results


def availability_query(
    *,
    appointment_type: AppointmentType,
    start: datetime,
    end: datetime,
    practitioner_ids: Sequence[int] | None = None,
    specialty: str | None = None,
    location_id: int | None = None,
    telehealth: bool | None = None,
    now: datetime | None = None,
    exclude_appointment_id: int | None = None,
) -> AvailabilityQuery | None:
    """The five queries of `availability` (None when nothing can be free)."""
    now = now or timezone.now()
    duration = timedelta(minutes=appointment_type.duration_minutes)
    before = timedelta(minutes=appointment_type.buffer_before_minutes)
    after = timedelta(minutes=appointment_type.buffer_after_minutes)
    earliest = max(start, now + timedelta(minutes=appointment_type.min_notice_minutes))
    latest_start = min(end - duration, now + timedelta(days=appointment_type.horizon_days))
    earliest = _whole_minute(earliest, up=True)
    latest_start = _whole_minute(latest_start, up=False)
    if latest_start < earliest:
        return None
    step = timedelta(minutes=ClinicSettings.load().slot_step_minutes)

    hours_qs = WorkingHours.objects.all()
    if location_id is not None:
        hours_qs = hours_qs.filter(location_id=location_id)
    elif appointment_type.mode == AppointmentType.Mode.IN_PERSON:
        hours_qs = hours_qs.filter(location__isnull=False)
    practitioners = list(
        practitioners_offering(
            appointment_type=appointment_type,
            practitioner_ids=practitioner_ids,
            specialty=specialty,
            telehealth=telehealth,
        ).prefetch_related(Prefetch("working_hours", queryset=hours_qs))
    )
    if not practitioners:
        return None
    ids = [p.pk for p in practitioners]
    window_lo, window_hi = earliest - before - duration, latest_start + duration + after

    # Integer microseconds from here on: comparing and bisecting aware datetimes (each
    # comparison asks the zones for offsets) cost more than everything else put together.
    duration_us, before_us, after_us = (d // _MICROSECOND for d in (duration, before, after))
    forbidden: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for practitioner_id, off_start, off_end in TimeOff.objects.filter(
        practitioner_id__in=ids, start__lt=window_hi, end__gt=window_lo
    ).values_list("practitioner_id", "start", "end"):
        # A slot [s, s + duration) touches [off_start, off_end) when s is in this interval.
        forbidden[practitioner_id].append((_us(off_start) - duration_us, _us(off_end)))
    busy = Appointment.objects.filter(
        practitioner_id__in=ids,
        status__in=ACTIVE_STATUSES,
        overbooked=False,
        blocked__overlap=(window_lo - after, window_hi + before),
    )
    if exclude_appointment_id is not None:
        busy = busy.exclude(pk=exclude_appointment_id)
    bounds = busy.order_by().annotate(lo=_BoundUs("blocked", function="lower"),
                                      hi=_BoundUs("blocked", function="upper"))  # fmt: skip
    for practitioner_id, lo, hi in bounds.values_list("practitioner_id", "lo", "hi"):
        # Our blocked range [s - before, s + duration + after) overlaps theirs [lo, hi).
        forbidden[practitioner_id].append((lo - duration_us - after_us, hi + before_us))
    return AvailabilityQuery(
        appointment_type=appointment_type,
        earliest=earliest,
        latest_start=latest_start,
        end=end,
        step=step,
        practitioners=practitioners,
        forbidden=dict(forbidden),
    )


_SLOT_START = attrgetter("start")


class _BoundUs(Func):
    """`lower(range)` / `upper(range)` of a tstzrange as microseconds since the epoch: psycopg
    parses a bigint many times faster than a range's text (the busy ranges are most of what
    availability reads)."""

    template = "(extract(epoch from %(function)s(%(expressions)s)) * 1000000)::bigint"
    output_field = BigIntegerField()


# The even-grid shortcut of `_block_grid` (off only in the test that compares both paths).
EVEN_GRID = True


def _block_grid(
    block_start: datetime, block_end: datetime, step: timedelta, duration: timedelta
) -> Iterable[int]:
    """The block's slot starts (microseconds since the epoch), on its wall-clock grid.

    Without a change of UTC offset inside the block (every block but those spanning a DST
    change), the wall-clock grid is an even grid in absolute time: a `range`. Otherwise each
    start is computed on the local wall clock, as `_slot_starts` does."""
    if EVEN_GRID and block_start.utcoffset() == block_end.utcoffset():
        duration_us = duration // _MICROSECOND
        return range(_us(block_start), _us(block_end) - duration_us + 1, step // _MICROSECOND)
    return (_us(moment) for moment in _slot_starts(block_start, block_end, step, duration))


def covering_block(
    *,
    practitioner: Practitioner,
    start: datetime,
    end: datetime,
    location_id: int | None,
    hours: Iterable[WorkingHours] | None = None,
) -> tuple[datetime, datetime, int | None] | None:
    """The working-hours block that contains [start, end), if any (one query, unless the
    practitioner's `hours` are given)."""
    tz = ZoneInfo(practitioner.timezone)
    if hours is None:
        hours = WorkingHours.objects.filter(practitioner=practitioner)
    for block_start, block_end, block_location in working_blocks(
        hours, tz=tz, start=start - timedelta(days=1), end=end + timedelta(days=1)
    ):
        if block_start <= start and end <= block_end:
            if location_id is None or block_location == location_id:
                return block_start, block_end, block_location
    return None


@functools.cache
def _columns_of(model: type[Model]) -> tuple[list[str], int, str]:
    fields = model._meta.concrete_fields
    assert not any(f.get_db_converters(connection) for f in fields), model
    return [f.attname for f in fields], fields.index(model._meta.pk), model._meta.pk.column


def rows_by_pk(*wanted: tuple[type[Model], object]) -> list[Model | None]:
    """Instances of several models, each by primary key, in one round trip (the ORM takes
    one query per table, and building each cost more CPU than PostgreSQL spent on it). None
    for a key that matches no row. For models whose fields need no conversion from the
    database (plain columns; checked)."""
    columns, joins, params = [], [], []
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
    found, at = [], 0
    for model, _ in wanted:
        attnames, pk_index, _ = _columns_of(model)
        values = row[at : at + len(attnames)]
        at += len(attnames)
        found.append(
            None if values[pk_index] is None else model.from_db(connection.alias, attnames, values)
        )
    return found


class NextAvailableReach(NamedTuple):
    """A practitioner's next available slot as last computed, and how far past its start a
    booking of its type reaches (duration and both buffers)."""

    start: datetime | None  # None: no row, or no free slot found
    reach: timedelta | None


@dataclass(frozen=True)
class SlotFacts:
    """What the booking rules read about one practitioner and one slot."""

    offered: bool  # the practitioner offers the appointment type
    away: bool  # time off overlaps the slot
    hours: list[WorkingHours]  # all the practitioner's weekly blocks
    next_available: NextAvailableReach


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
                                            + t.buffer_after_minutes)
             FROM {NextAvailable._meta.db_table} n
             LEFT JOIN {AppointmentType._meta.db_table} t ON t.id = n.appointment_type_id
             WHERE n.practitioner_id = p.id)
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
    """Everything `services.slot_validate` reads from the database, in one round trip
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
            },
        )
        offered, away, hours, next_available = cursor.fetchone()
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
        )
        if next_available
        else NextAvailableReach(None, None),
    )


def conflicts_for(
    *, practitioner_id: int, start: datetime, end: datetime, exclude_id: int | None = None
) -> list[dict]:
    """Active appointments whose blocked range overlaps [start, end): ids and times only."""
    qs = Appointment.objects.filter(
        practitioner_id=practitioner_id,
        status__in=ACTIVE_STATUSES,
        blocked__overlap=(start, end),
    )
    if exclude_id is not None:
        qs = qs.exclude(pk=exclude_id)
    return [
        {"id": pk, "start": s.isoformat(), "end": e.isoformat()}
        for pk, s, e in qs.order_by("start").values_list("id", "start", "end")[:20]
    ]


def suggested_alternatives(
    *,
    appointment_type: AppointmentType,
    practitioner: Practitioner,
    after: datetime,
    count: int = 5,
    days: int = 14,
    exclude_appointment_id: int | None = None,
) -> list[dict]:
    """The next free slots of the same practitioner, then of others sharing a specialty."""
    window_end = after + timedelta(days=days)
    own = availability(
        appointment_type=appointment_type,
        start=after,
        end=window_end,
        practitioner_ids=[practitioner.pk],
        limit_per_practitioner=count,
        exclude_appointment_id=exclude_appointment_id,
    )
    picks = [slot for result in own for slot in result.slots][:count]
    names = {practitioner.pk: practitioner.display_name}
    if len(picks) < count:
        specialty_ids = list(practitioner.specialties.values_list("pk", flat=True))
        others = (
            Practitioner.objects.filter(specialties__in=specialty_ids)
            .exclude(pk=practitioner.pk)
            .values_list("pk", flat=True)
            .distinct()
        )
        other_ids = list(others[:50])
        if other_ids:
            results = availability(
                appointment_type=appointment_type,
                start=after,
                end=window_end,
                practitioner_ids=other_ids,
                limit_per_practitioner=count,
            )
            for result in results:
                names[result.practitioner.pk] = result.practitioner.display_name
            pool = sorted((s for r in results for s in r.slots), key=lambda s: s.start)
            picks += pool[: count - len(picks)]
    return [
        {
            "practitioner": slot.practitioner_id,
            "practitioner_name": names.get(slot.practitioner_id, ""),
            "start": slot.start.isoformat(),
            "end": slot.end.isoformat(),
            "location": slot.location_id,
        }
        for slot in picks
    ]


def appointment_list(*, user=None, patient: Patient | None = None) -> QuerySet[Appointment]:
    """Appointments with what a list shows, N+1 free. A patient user sees only their own."""
    qs = Appointment.objects.select_related(
        "practitioner", "patient", "appointment_type", "location"
    )
    if patient is not None:
        qs = qs.filter(patient=patient)
    if user is not None and "patient" in user.roles and not (user.roles - {"patient"}):
        qs = qs.filter(patient__user=user)
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


def search_with_next_available(queryset, params):
    """The practitioner search's `next_available` (earliest free slot, kept by
    `services.next_available_refresh`) and its `available_before=<datetime>` filter: one
    correlated subquery inside the search's own query, never a query per practitioner."""
    from django.core.exceptions import ValidationError
    from django.db.models import OuterRef, Subquery
    from django.utils.dateparse import parse_date, parse_datetime

    soonest = NextAvailable.objects.filter(practitioner=OuterRef("pk"), start__gt=timezone.now())
    queryset = queryset.annotate(next_available=Subquery(soonest.values("start")[:1]))
    raw = params.get("available_before")
    if raw:
        moment = parse_datetime(raw)
        if moment is None and parse_date(raw) is not None:
            moment = datetime.combine(parse_date(raw), datetime.min.time(), ZoneInfo("UTC"))
        if moment is None:
            raise ValidationError({"available_before": "Give an ISO date or datetime."})
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, ZoneInfo("UTC"))
        queryset = queryset.filter(next_available__lt=moment)
    return queryset


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
) -> dict[int, tuple[Slot, AppointmentType]]:
    """The earliest free slot of each practitioner within `days`, with the type it is for:
    `appointment_type` when given, otherwise the shortest active type the practitioner offers
    (the one that fits most gaps). One query for the types, then one availability pass (five
    queries) per distinct type involved — in practice one or two — whatever the number of
    practitioners."""
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


def online_change_deadline(
    *, appointment: Appointment, clinic_settings: ClinicSettings | None = None
) -> datetime:
    """Until when a patient may cancel or move this visit online: the start minus the clinic's
    late-cancel window (`services.appointment_cancel(allow_late=False)` refuses after it)."""
    clinic_settings = clinic_settings or ClinicSettings.load()
    return appointment.start - timedelta(hours=clinic_settings.late_cancel_hours)


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

# Roles whose work spans the whole clinic's schedule; a practitioner without one of them sees
# only their own schedule and the patients they see.
WHOLE_CLINIC_ROLES = frozenset({CLINIC_ADMIN, FRONT_DESK, BILLER, INTEGRATOR})


def sees_own_schedule_only(user) -> bool:
    if getattr(user, "is_superuser", False):
        return False
    roles = getattr(user, "roles", frozenset())
    return PRACTITIONER in roles and not roles & WHOLE_CLINIC_ROLES


def scope_to_practitioner(queryset: QuerySet, *, user, path: str = "practitioner") -> QuerySet:
    """Rows of `queryset` (reaching a practitioner through `path`, "" for practitioners
    themselves) that `user` may see."""
    if sees_own_schedule_only(user):
        return queryset.filter(**{f"{path}__user" if path else "user": user})
    return queryset


def scope_to_patients(queryset: QuerySet, *, user, path: str = "patient") -> QuerySet:
    """Rows of `queryset` (reaching a patient through `path`, "" for patients themselves) of
    patients `user` may see: a practitioner sees the patients they have appointments with."""
    if not sees_own_schedule_only(user):
        return queryset
    seen = Appointment.objects.filter(practitioner__user=user).values("patient_id")
    return queryset.filter(**{f"{path}__in" if path else "pk__in": seen})


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
) -> list[BoardColumn]:
    """Working hours (expanded in each practitioner's zone; only those at `location_id` when
    given), time off and appointments of `practitioners` between `start` and `end`. Five
    queries, whatever the number of practitioners or days."""
    hours = WorkingHours.objects.all()
    if location_id is not None:
        hours = hours.filter(location_id=location_id)
    practitioners = list(
        practitioners.prefetch_related(
            Prefetch("working_hours", queryset=hours),
            Prefetch(
                "appointment_types",
                queryset=AppointmentType.objects.filter(is_active=True).order_by("name"),
            ),
        )
    )
    ids = [p.pk for p in practitioners]
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
    for practitioner in practitioners:
        tz = ZoneInfo(practitioner.timezone)
        working = [
            (max(lo, start), min(hi, end), location)
            for lo, hi, location in working_blocks(
                practitioner.working_hours.all(), tz=tz, start=start, end=end
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

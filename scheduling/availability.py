"""The availability engine: free slots per practitioner, and what a refused booking is offered
instead.

An answer reads its inputs in one round trip whatever the number of practitioners or days
(`availability_query`): the slot step, the practitioners offering the visit with their working
hours, and the time each cannot start a visit in (time off, visits widened by buffers, time held
elsewhere) as integer microseconds, and the clinic's closures. The rest is interval arithmetic
in Python, with working hours expanded day by day in each practitioner's zone
(`working_blocks`) and slot starts on each block's wall-clock grid.
"""

import bisect
import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from operator import attrgetter
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone
from psycopg.types.range import Range

from clinic.tenancy import tenant_connection
from practice.models import ClinicSettings, Practitioner

from .busy import busy_sources
from .models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentType,
    Closure,
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


class Hours(NamedTuple):
    """Weekly working hours as the engine reads them: the fields of `WorkingHours` that
    `working_blocks` uses (it takes either)."""

    weekday: int
    start_time: time
    end_time: time
    location_id: int | None
    effective_from: date | None
    effective_to: date | None


class Closed(NamedTuple):
    """A closure as the engine reads it: its days (both included), where (None: the whole
    clinic) and its name."""

    start_date: date
    end_date: date
    location_id: int | None
    name: str


def closures_between(first: date, last: date) -> tuple[Closed, ...]:
    """The closures touching the days from `first` to `last` (one query)."""
    rows = Closure.objects.filter(start_date__lte=last, end_date__gte=first).order_by(
        "start_date", "id"
    )
    return tuple(
        Closed(*row) for row in rows.values_list("start_date", "end_date", "location_id", "name")
    )


def closed_on(closures: Iterable[Closed], day: date, location_id: int | None) -> Closed | None:
    """The closure that closes `day` at `location_id` (a clinic-wide one closes every
    location, and visits without one), if any."""
    for closure in closures:
        if closure.start_date <= day <= closure.end_date and closure.location_id in (
            None,
            location_id,
        ):
            return closure
    return None


def working_blocks(
    hours: Iterable[WorkingHours | Hours],
    *,
    tz: ZoneInfo,
    start: datetime,
    end: datetime,
    closures: Sequence[Closed] = (),
) -> list[tuple[datetime, datetime, int | None]]:
    """Absolute (UTC) working intervals between start and end, from weekly wall-clock hours,
    leaving out the days `closures` close (a day on the practitioner's calendar, at the
    block's location).

    Each local date is combined with the local times in the practitioner's zone, so a 09:00
    start is 09:00 local on both DST change days.
    """
    by_weekday: dict[int, list[WorkingHours | Hours]] = defaultdict(list)
    for block in hours:
        by_weekday[block.weekday].append(block)
    blocks = []
    for day in _local_days(start, end, tz):
        for block in by_weekday.get(day.weekday(), ()):
            if block.effective_from and day < block.effective_from:
                continue
            if block.effective_to and day > block.effective_to:
                continue
            if closures and closed_on(closures, day, block.location_id):
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
    widened by both visits' buffers, minimum notice, booking horizon, location and the
    clinic's closures, and time held elsewhere (`busy`: the waitlist's holds). The slot grid
    step is the clinic's setting. One round trip, whatever the number of practitioners or days.
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
    """Everything an availability answer depends on, read in one round trip. `compute()` turns
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
    closures: tuple[Closed, ...] = ()  # the days the clinic or a location is closed
    hours: dict[int, tuple[Hours, ...]] = field(default_factory=dict)  # per practitioner

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
                    self.hours.get(p.pk, ()),
                    tuple(sorted(self.forbidden.get(p.pk, ()))),
                )
                for p in self.practitioners
            ),
            self.closures,
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
                self.hours.get(pk, ()),
                tz=ZoneInfo(practitioner.timezone),
                start=self.earliest,
                end=self.end,
                closures=self.closures,
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

    def first_per_location(self) -> dict[int, dict[int, Slot]]:
        """The earliest free slot of each practitioner at each location of their working
        hours (blocks without a location left out): what `availability(location_id=...,
        limit_per_practitioner=1)` answers for each location, from this one read."""
        duration = timedelta(minutes=self.appointment_type.duration_minutes)
        earliest_us, latest_us = _us(self.earliest), _us(self.latest_start)
        found: dict[int, dict[int, Slot]] = {}
        for practitioner in self.practitioners:
            pk = practitioner.pk
            lows, highs = _merge(self.forbidden.get(pk, []))
            first: dict[int, Slot] = {}
            blocks = working_blocks(
                self.hours.get(pk, ()),
                tz=ZoneInfo(practitioner.timezone),
                start=self.earliest,
                end=self.end,
                closures=self.closures,
            )
            for block_start, block_end, location in sorted(blocks, key=lambda b: b[0]):
                if location is None or location in first:
                    continue
                for moment in _block_grid(block_start, block_end, self.step, duration):
                    if moment < earliest_us:
                        continue
                    if moment > latest_us:
                        break
                    index = bisect.bisect_left(lows, moment) - 1
                    if index >= 0 and moment < highs[index]:
                        continue  # strictly inside a forbidden interval
                    slot_start = _EPOCH + timedelta(microseconds=moment)
                    first[location] = Slot(pk, slot_start, slot_start + duration, location)
                    break
            found[pk] = first
        return found


@functools.cache
def _type_fields() -> list[str]:
    return [f.attname for f in AppointmentType._meta.concrete_fields]


@functools.cache
def _type_sql() -> str:
    columns = ", ".join(
        connection.ops.quote_name(str(f.column)) for f in AppointmentType._meta.concrete_fields
    )
    return f"SELECT {columns} FROM {AppointmentType._meta.db_table} WHERE id = %s AND is_active"  # noqa: S608


def availability_query(**inputs: Any) -> AvailabilityQuery | None:
    """The inputs of `availability`, read in one round trip (`_inputs_sql`; keywords as
    `_availability_read` takes them: appointment_type, start, end and the filters); None when
    nothing can be free (the window closed by notice or horizon, or no practitioner offers the
    visit)."""
    return _availability_read(**inputs)[0]


# The appointment types this process has read for the availability endpoint, by clinic and id:
# their rows as read last (`availability_query_of_type`). Bounded: cleared whole when full.
_TYPE_ROWS: dict[tuple[str, int], tuple] = {}
TYPE_ROWS_MAX = 4096
_UNREAD = object()


def availability_query_of_type(
    type_id: int, **filters: Any
) -> tuple[AppointmentType | None, AvailabilityQuery | None]:
    """The active appointment type `type_id` (None: there is none) and `availability_query`
    for it (`filters` are its keywords), in one round trip when this process has read the type
    before.

    The inputs are read for the type as this process last read it, and the type's row is read
    again in the same round trip; only if that row differs (the type was edited or retired
    since) are the inputs read again, for the row as it is now. An answer is never built on
    a type other than the one in the database at that moment; the endpoint saves the separate
    read of the type every answer needed."""
    key = (tenant_connection.schema_name, type_id)
    row = _TYPE_ROWS.get(key)
    for _ in range(3):
        if row is None:
            row = _type_row(type_id)
            if row is None:
                _TYPE_ROWS.pop(key, None)
                return None, None
            fresh: Any = row  # just read on its own: the inputs need not read it again
            appointment_type = _type_of(row)
            query, _ = _availability_read(appointment_type=appointment_type, **filters)
        else:
            appointment_type = _type_of(row)
            query, fresh = _availability_read(
                appointment_type=appointment_type, type_check=True, **filters
            )
            if fresh is _UNREAD:  # nothing was read (the window is closed): check the type alone
                fresh = _type_row(type_id)
        if fresh == row:
            if len(_TYPE_ROWS) >= TYPE_ROWS_MAX:
                _TYPE_ROWS.clear()
            _TYPE_ROWS[key] = row
            return appointment_type, query
        row = fresh  # edited (or None: retired) since this process read it
    raise RuntimeError(f"appointment type {type_id} changed on each of three reads")


def _type_row(pk: int) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(_type_sql(), [pk])
        return cursor.fetchone()


def _type_of(row: tuple) -> AppointmentType:
    return AppointmentType.from_db(connection.alias, _type_fields(), row)


def _availability_read(
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
    type_check: bool = False,
) -> tuple[AvailabilityQuery | None, Any]:
    """`availability_query`'s inputs, and with `type_check` the appointment type's row (None:
    not active) read in the same round trip; `_UNREAD` when nothing was read."""
    now = now or timezone.now()
    duration = timedelta(minutes=appointment_type.duration_minutes)
    before = timedelta(minutes=appointment_type.buffer_before_minutes)
    after = timedelta(minutes=appointment_type.buffer_after_minutes)
    earliest = max(start, now + timedelta(minutes=appointment_type.min_notice_minutes))
    latest_start = min(end - duration, now + timedelta(days=appointment_type.horizon_days))
    earliest = _whole_minute(earliest, up=True)
    latest_start = _whole_minute(latest_start, up=False)
    if latest_start < earliest:
        return None, _UNREAD
    window_lo, window_hi = earliest - before - duration, latest_start + duration + after
    needs_telehealth = appointment_type.mode == AppointmentType.Mode.TELEHEALTH or bool(telehealth)
    if location_id is not None:
        hours_where = "h.location_id = %(location)s"
    elif appointment_type.mode == AppointmentType.Mode.IN_PERSON:
        hours_where = "h.location_id IS NOT NULL"
    else:
        hours_where = "TRUE"
    sql = _inputs_sql(
        ids=practitioner_ids is not None,
        specialty=bool(specialty),
        telehealth=needs_telehealth,
        hours_where=hours_where,
        exclude=exclude_appointment_id is not None,
        sources=busy_sources(),
        type_check=type_check,
    )
    params: dict[str, Any] = {
        "type": appointment_type.pk,
        "ids": list(practitioner_ids or ()),
        "specialty": specialty,
        "location": location_id,
        "active": list(ACTIVE_STATUSES),
        "exclude": exclude_appointment_id,
        "off_lo": window_lo, "off_hi": window_hi,
        "lo": window_lo - after, "hi": window_hi + before,
        # a day either side: each practitioner's calendar day, whatever their zone
        "first_day": (earliest - timedelta(days=1)).date(),
        "last_day": (end + timedelta(days=1)).date(),
        "clock": timezone.now(),
    }  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        step_row = cursor.fetchone()
        results = []
        for _ in range(4):
            cursor.nextset()
            results.append(cursor.fetchall())
        type_row = _UNREAD
        if type_check:
            cursor.nextset()
            type_row = cursor.fetchone()
    people, hour_rows, busy_rows, closure_rows = results
    if not people:
        return None, type_row
    offered = {pk for pk, *_ in people}
    practitioners = [
        Practitioner.from_db(connection.alias, _PRACTITIONER_FIELDS, row) for row in people
    ]
    hours: dict[int, list[Hours]] = defaultdict(list)
    for pk, *rest in hour_rows:
        if pk in offered:
            hours[pk].append(Hours(*rest))
    # Each row is time a visit's own interval must not touch, turned into the open interval
    # of starts it forbids (integer microseconds: comparing and bisecting aware datetimes
    # cost more than everything else put together).
    duration_us, before_us, after_us = (d // _MICROSECOND for d in (duration, before, after))
    forbidden: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for kind, pk, lo, hi in busy_rows:
        if pk not in offered:
            continue
        if kind == 0:  # time off: a slot [s, s + duration) touches [lo, hi)
            forbidden[pk].append((lo - duration_us, hi))
        else:  # a visit or held time: our [s - before, s + duration + after) overlaps [lo, hi)
            forbidden[pk].append((lo - duration_us - after_us, hi + before_us))
    query = AvailabilityQuery(
        appointment_type=appointment_type,
        earliest=earliest,
        latest_start=latest_start,
        end=end,
        step=timedelta(minutes=step_row[0] if step_row else _DEFAULT_STEP),
        practitioners=practitioners,
        forbidden=dict(forbidden),
        closures=tuple(Closed(*row) for row in closure_rows),
        hours={pk: tuple(found) for pk, found in hours.items()},
    )
    return query, type_row


_DEFAULT_STEP = ClinicSettings._meta.get_field("slot_step_minutes").default
# What a practitioner of an answer holds (the rest of the row loads if a caller reads it), in
# the model's order of fields, as `Model.from_db` takes them.
_PRACTITIONER_FIELDS = [
    f.attname
    for f in Practitioner._meta.concrete_fields
    if f.attname in {"id", "display_name", "rating_average", "timezone"}
]


def _us_sql(column: str) -> str:
    """SQL for a timestamptz column as microseconds since the epoch (what `_us` computes)."""
    return f"(extract(epoch FROM {column}) * 1000000)::bigint"


@functools.cache
def _inputs_sql(
    *,
    ids: bool,
    specialty: bool,
    telehealth: bool,
    hours_where: str,
    exclude: bool,
    sources: tuple[str, ...],
    type_check: bool = False,
) -> str:
    """The inputs of an answer: five plain statements sent as one (the client-side binding
    cursor's multiple results; one large statement with CTEs and JSON cost PostgreSQL twice
    the CPU to plan), each built for the filters asked for (no `%s IS NULL OR` branches):

    1. the clinic's slot step;
    2. the active practitioners offering the visit type (and its mode), by name;
    3. working hours, 4. busy time as microseconds since the epoch: time off (kind 0), active
       visits that do not overbook (kind 1), time held elsewhere (kind 2: `scheduling.busy`'s
       sources), each of the practitioners statement 2 can return or a superset of them
       (whatever it has more is dropped in Python);
    5. the closures touching the window's days;
    6. with `type_check`, the appointment type's row if it is active (`_type_sql`)."""
    if ids:
        who = "= ANY(%(ids)s::bigint[])"
    elif specialty:
        who = (
            "IN (SELECT ps.practitioner_id FROM practice_practitioner_specialties ps"
            " JOIN practice_specialty s ON s.id = ps.specialty_id WHERE s.slug = %(specialty)s)"
        )
    else:
        who = (
            "IN (SELECT t.practitioner_id FROM scheduling_appointmenttype_practitioners t"
            " WHERE t.appointmenttype_id = %(type)s)"
        )
    practitioners = [
        "pr.is_active",
        "pr.id IN (SELECT t.practitioner_id FROM scheduling_appointmenttype_practitioners t"
        " WHERE t.appointmenttype_id = %(type)s)",
    ]
    if ids or specialty:
        practitioners.append(f"pr.id {who}")
    if telehealth:
        practitioners.append("pr.offers_telehealth")
    elsewhere = "".join(
        f"\nUNION ALL SELECT 2, s.pid, {_us_sql('s.lo')}, {_us_sql('s.hi')}"
        f" FROM ({sql}) AS s(pid, lo, hi) WHERE s.pid {who}"
        for sql in sources
    )
    not_excluded = " AND a.id <> %(exclude)s" if exclude else ""
    return f"""
SELECT slot_step_minutes FROM practice_clinicsettings WHERE id = 1;
SELECT {", ".join(f"pr.{name}" for name in _PRACTITIONER_FIELDS)} FROM practice_practitioner pr
 WHERE {" AND ".join(practitioners)} ORDER BY pr.display_name, pr.id;
SELECT h.practitioner_id, h.weekday, h.start_time, h.end_time, h.location_id, h.effective_from,
       h.effective_to
  FROM scheduling_workinghours h WHERE h.practitioner_id {who} AND {hours_where} ORDER BY h.id;
SELECT 0, o.practitioner_id, {_us_sql("o.start")}, {_us_sql('o."end"')} FROM scheduling_timeoff o
 WHERE o.practitioner_id {who} AND o.start < %(off_hi)s AND o."end" > %(off_lo)s
UNION ALL
SELECT 1, a.practitioner_id, {_us_sql("lower(a.blocked)")}, {_us_sql("upper(a.blocked)")}
  FROM scheduling_appointment a
 WHERE a.practitioner_id {who} AND a.status = ANY(%(active)s::text[]) AND NOT a.overbooked
   AND a.blocked && tstzrange(%(lo)s, %(hi)s, '[)'){not_excluded}{elsewhere};
SELECT c.start_date, c.end_date, c.location_id, c.name FROM scheduling_closure c
 WHERE c.start_date <= %(last_day)s AND c.end_date >= %(first_day)s ORDER BY c.start_date, c.id
{";" + _type_sql().replace("%s", "%(type)s") if type_check else ""}
"""  # noqa: S608 (no input in it: the parameters are bound)


_SLOT_START = attrgetter("start")


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


def blocked_bounds(
    appointment_type: AppointmentType, start: datetime, end: datetime
) -> tuple[datetime, datetime]:
    """What a visit of `appointment_type` from `start` to `end` holds of the schedule: the
    visit widened by the type's buffers."""
    return (
        start - timedelta(minutes=appointment_type.buffer_before_minutes),
        end + timedelta(minutes=appointment_type.buffer_after_minutes),
    )


def blocked_range(
    appointment_type: AppointmentType, start: datetime, end: datetime
) -> Range[datetime]:
    """`blocked_bounds` as the range the exclusion constraint compares."""
    return Range(*blocked_bounds(appointment_type, start, end), "[)")


def slot_conflicts(
    *,
    practitioner: Practitioner,
    start: datetime,
    appointment_type: AppointmentType | None = None,
    end: datetime | None = None,
) -> dict:
    """Would a visit here conflict, without booking: the active visits overlapping the slot
    (buffers included when the type is given, else [start, end)) and, when there are some and
    the type is known, `suggested_alternatives`. The answer of `POST /appointments/check/`."""
    if appointment_type is not None:
        end = start + timedelta(minutes=appointment_type.duration_minutes)
        lo, hi = blocked_bounds(appointment_type, start, end)
    elif end is not None:
        lo, hi = start, end
    else:
        raise TypeError("slot_conflicts needs the appointment type or the end")
    conflicts = conflicts_for(practitioner_id=practitioner.pk, start=lo, end=hi)
    alternatives = []
    if conflicts and appointment_type is not None:
        alternatives = suggested_alternatives(
            appointment_type=appointment_type, practitioner=practitioner, after=start
        )
    return {
        "has_conflict": bool(conflicts),
        "conflicting_appointments": conflicts,
        "suggested_alternatives": alternatives,
    }


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

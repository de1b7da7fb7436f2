"""The next-available projection: each practitioner's earliest free slot (`NextAvailable`),
which the practitioner search shows and filters on inside its own query.

A schedule change refreshes the rows it can move (`next_available_may_move`: bookings, through
`services`; rules and types, through `receivers`); the beat refreshes only the rows the clock
overtakes, found by one SQL query per 200 clinics (`clinics_with_stale_next_available`) among
the clinics the index of work due names (tenants.models.WorkDue, `next_available_next_due`).
"""

from collections import defaultdict
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import connection, models
from django.utils import timezone
from django_tenants.utils import quote_schema_name

from clinic.api import clinic_data_changed
from clinic.tenancy import tenant_connection
from practice.models import Practitioner
from tenants.selectors import schemas_where

from ..availability import availability_query
from ..models import AppointmentType, NextAvailable, NextAvailableAt, WorkingHours


class NextAvailableReach(NamedTuple):
    """A practitioner's next available slot as last computed, and how far past its start a
    booking of its type reaches (duration and both buffers); with the latest of their next
    slots at each location (`NextAvailableAt`), and whether one location has none."""

    start: datetime | None  # None: no row, or no free slot found
    reach: timedelta | None
    latest: datetime | None = None  # the latest next slot at a location, when after `start`
    location_without_slot: bool = False


def next_available_may_move(
    *,
    practitioner_id: int,
    touched_from: datetime,
    known: NextAvailableReach | None = None,
) -> bool:
    """Whether taking or freeing schedule time from `touched_from` on can move the
    practitioner's next available slot S (for type T, as last computed; `known` if already
    read, else one query).

    A booking can only take S if its blocked range starts before S's ends (S + T's duration
    and buffer after), and freeing time can only open a slot before S if the freed range
    starts before such a slot's blocked range ends; both are inside `S + T's duration and
    buffers`. The same holds of each location's next slot, so the latest of them (`latest`)
    bounds what can move. Changes further out (most bookings: days or weeks ahead) leave
    them alone, so they queue no refresh. Unknown, empty or passed S, or a location without
    a slot: refresh. The beat refreshes the rows time overtakes
    (`next_available_refresh_stale`)."""
    if known is None:
        row = (
            NextAvailable.objects.filter(practitioner_id=practitioner_id)
            .select_related("appointment_type")
            .first()
        )
        known = NextAvailableReach(None, None)
        if row is not None and row.appointment_type is not None:
            t = row.appointment_type
            reach = t.duration_minutes + t.buffer_before_minutes + t.buffer_after_minutes
            at = list(
                NextAvailableAt.objects.filter(practitioner_id=practitioner_id).values_list(
                    "start", flat=True
                )
            )
            known = NextAvailableReach(
                row.start,
                timedelta(minutes=reach),
                latest=max((s for s in at if s is not None), default=None),
                location_without_slot=None in at,
            )
    if known.start is None or known.reach is None or known.start <= timezone.now():
        return True
    if known.location_without_slot:
        return True
    latest = max(known.start, known.latest) if known.latest is not None else known.start
    return touched_from < latest + known.reach


def next_available_refresh(*, practitioner_ids: list[int] | None = None, days: int = 60) -> int:
    """Recompute the earliest free slot of these practitioners (default: all active ones),
    for each one's shortest active appointment type, anywhere (`NextAvailable`) and at each
    location of their working hours (`NextAvailableAt`, from the same read). One availability
    read per distinct type, so the cost does not grow with the number of practitioners'
    queries. Returns the practitioners' rows written. The clinic's cached answers go stale
    only if a slot moved."""
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
    for practitioner_id, appointment_type in shortest.items():
        by_type[appointment_type.pk].append(practitioner_id)
        types[appointment_type.pk] = appointment_type
    found: dict[int, tuple] = {pk: (None, None) for pk in ids}
    # Each one's next slot at every location of their working hours (current or to come):
    # (practitioner, location) -> start, None where no slot is free there.
    at: dict[tuple[int, int], datetime | None] = {
        key: None
        for key in WorkingHours.objects.filter(practitioner_id__in=ids, location__isnull=False)
        .filter(
            models.Q(effective_to__isnull=True)
            | models.Q(effective_to__gte=timezone.localdate(now))
        )
        .values_list("practitioner_id", "location_id")
        .distinct()
    }
    for type_id, members in by_type.items():
        query = availability_query(
            appointment_type=types[type_id],
            start=now,
            end=now + timedelta(days=days),
            practitioner_ids=members,
            now=now,
        )
        if query is None:
            continue
        for result in query.compute(limit_per_practitioner=1):
            if result.slots:
                found[result.practitioner.pk] = (result.slots[0].start, type_id)
        for practitioner_id, firsts in query.first_per_location().items():
            for location_id, slot in firsts.items():
                if (practitioner_id, location_id) in at:
                    at[practitioner_id, location_id] = slot.start
    before = {
        pk: (start, type_id)
        for pk, start, type_id in NextAvailable.objects.filter(practitioner_id__in=ids).values_list(
            "practitioner_id", "start", "appointment_type_id"
        )
    }
    at_before = {
        (pk, location_id): start
        for pk, location_id, start in NextAvailableAt.objects.filter(
            practitioner_id__in=ids
        ).values_list("practitioner_id", "location_id", "start")
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
    gone = models.Q()
    for pk, location_id in at_before.keys() - at.keys():  # hours there no more
        gone |= models.Q(practitioner_id=pk, location_id=location_id)
    if gone:
        NextAvailableAt.objects.filter(gone).delete()
    NextAvailableAt.objects.bulk_create(
        [
            NextAvailableAt(practitioner_id=pk, location_id=loc, start=start, computed_at=now)
            for (pk, loc), start in at.items()
        ],
        update_conflicts=True,
        unique_fields=["practitioner", "location"],
        update_fields=["start", "computed_at"],
    )
    if at_before != at or any(before.get(pk) != value for pk, value in found.items()):
        clinic_data_changed()  # the search shows these
    return len(rows)


NEXT_AVAILABLE_MAX_AGE = timedelta(days=1)  # the stale rows' safety net (see below)


def _next_available_stale_sql() -> str:
    """Active practitioners whose next-available rows the clock has overtaken, or will by the
    first `%s` (a moment a little after the next beat): no row, no slot (the 60-day window
    and the horizon move on, one may appear), no type, a slot its type's minimum notice will no
    longer allow, or a row computed before the second `%s` (a safety net); the same of each
    location's row (`NextAvailableAt`, the third `%s`), and working hours at a location
    without its row (hours added since, or rows from before locations had them: local dates
    from the fourth). Every other row stays right as time passes: a free slot stays the
    earliest until a schedule change, and each change queues its own refresh."""
    return (
        f"SELECT p.id FROM {{schema}}.{Practitioner._meta.db_table} p "
        f"LEFT JOIN {{schema}}.{NextAvailable._meta.db_table} n ON n.practitioner_id = p.id "
        f"LEFT JOIN {{schema}}.{AppointmentType._meta.db_table} t "
        "ON t.id = n.appointment_type_id "
        "WHERE p.is_active AND (n.start IS NULL OR t.id IS NULL "
        "OR n.start < %s + make_interval(mins => t.min_notice_minutes) OR n.computed_at < %s "
        f"OR EXISTS (SELECT 1 FROM {{schema}}.{NextAvailableAt._meta.db_table} a "
        "WHERE a.practitioner_id = p.id AND (a.start IS NULL "
        "OR a.start < %s + make_interval(mins => t.min_notice_minutes))) "
        f"OR EXISTS (SELECT 1 FROM {{schema}}.{WorkingHours._meta.db_table} h "
        "WHERE h.practitioner_id = p.id AND h.location_id IS NOT NULL "
        "AND (h.effective_to IS NULL OR h.effective_to >= %s) "
        f"AND NOT EXISTS (SELECT 1 FROM {{schema}}.{NextAvailableAt._meta.db_table} a "
        "WHERE a.practitioner_id = p.id AND a.location_id = h.location_id)))"
    )


def _next_available_stale_params() -> list:
    margin = timedelta(seconds=2 * settings.NEXT_AVAILABLE_REFRESH_SECONDS)
    now = timezone.now()
    return [now + margin, now - NEXT_AVAILABLE_MAX_AGE, now + margin, timezone.localdate(now)]


def next_available_refresh_stale() -> int:
    """The periodic refresh, for this clinic: only the rows `_next_available_stale_sql` picks,
    so a beat costs what time has overtaken, not a pass over every practitioner (which would
    hold the CPU that bookings need). Returns rows written."""
    sql = _next_available_stale_sql().format(
        schema=quote_schema_name(tenant_connection.schema_name)
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, _next_available_stale_params())
        ids = [row[0] for row in cursor.fetchall()]
    return next_available_refresh(practitioner_ids=ids) if ids else 0


def next_available_next_due() -> tuple[str, list]:
    """When `_next_available_stale_sql` could next pick a row in a clinic, as SQL and its
    parameters for tenants.services.work_due_settle: at once ('epoch') where a row is missing
    or has no slot or no type, else the earliest moment a slot comes within its type's minimum
    notice (less the sweep's margin) or a row reaches the safety net's age; NULL without active
    practitioners. Only a write to what it is computed from brings that moment forward, and
    each such write marks the clinic due (migrations scheduling.0012, practice.0014)."""
    at = f"{{schema}}.{NextAvailableAt._meta.db_table}"
    notice = "make_interval(mins => t.min_notice_minutes)"
    sql = (
        "SELECT min(CASE WHEN n.start IS NULL OR t.id IS NULL "  # noqa: S608
        f"OR EXISTS (SELECT 1 FROM {at} a WHERE a.practitioner_id = p.id AND a.start IS NULL) "
        f"OR EXISTS (SELECT 1 FROM {{schema}}.{WorkingHours._meta.db_table} h "
        "WHERE h.practitioner_id = p.id AND h.location_id IS NOT NULL "
        "AND (h.effective_to IS NULL OR h.effective_to >= %s) "
        f"AND NOT EXISTS (SELECT 1 FROM {at} a "
        "WHERE a.practitioner_id = p.id AND a.location_id = h.location_id)) "
        "THEN 'epoch'::timestamptz "
        f"ELSE LEAST(n.start - {notice} - %s, "
        f"(SELECT min(a.start) FROM {at} a WHERE a.practitioner_id = p.id) - {notice} - %s, "
        "n.computed_at + %s) END) "
        f"FROM {{schema}}.{Practitioner._meta.db_table} p "
        f"LEFT JOIN {{schema}}.{NextAvailable._meta.db_table} n ON n.practitioner_id = p.id "
        f"LEFT JOIN {{schema}}.{AppointmentType._meta.db_table} t "
        "ON t.id = n.appointment_type_id WHERE p.is_active"
    )
    margin = timedelta(seconds=2 * settings.NEXT_AVAILABLE_REFRESH_SECONDS)
    return sql, [timezone.localdate(), margin, margin, NEXT_AVAILABLE_MAX_AGE]


def clinics_with_stale_next_available(schemas: list[str]) -> list[str]:
    """The schemas, of those given, where `next_available_refresh_stale` has work: one query
    per 200 clinics."""
    return schemas_where(
        schemas,
        table=NextAvailable._meta.db_table,
        sql=_next_available_stale_sql(),
        params=_next_available_stale_params(),
    )

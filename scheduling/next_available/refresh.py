"""The next-available projection: each practitioner's earliest free slot (`NextAvailable`),
which the practitioner search shows and filters on inside its own query.

A schedule change refreshes the rows it can move (`next_available_may_move`: bookings, through
`services`; rules and types, through `receivers`); the beat refreshes only the rows the clock
overtakes, found by one SQL query per 200 clinics (`clinics_with_stale_next_available`).
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

from ..availability import availability
from ..models import AppointmentType, NextAvailable


class NextAvailableReach(NamedTuple):
    """A practitioner's next available slot as last computed, and how far past its start a
    booking of its type reaches (duration and both buffers)."""

    start: datetime | None  # None: no row, or no free slot found
    reach: timedelta | None


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
    buffers`. Changes further out (most bookings: days or weeks ahead) leave S alone, so they
    queue no refresh. Unknown, empty or passed S: refresh. The beat refreshes the rows time
    overtakes (`next_available_refresh_stale`)."""
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
            known = NextAvailableReach(row.start, timedelta(minutes=reach))
    if known.start is None or known.reach is None or known.start <= timezone.now():
        return True
    return touched_from < known.start + known.reach


def next_available_refresh(*, practitioner_ids: list[int] | None = None, days: int = 60) -> int:
    """Recompute the earliest free slot of these practitioners (default: all active ones),
    for each one's shortest active appointment type. One availability pass per distinct type,
    so the cost does not grow with the number of practitioners' queries. Returns rows written.
    The clinic's cached answers go stale only if a slot moved."""
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
    for type_id, members in by_type.items():
        for result in availability(
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


def clinics_with_stale_next_available(schemas: list[str]) -> list[str]:
    """The schemas, of those given, where `next_available_refresh_stale` has work: one query
    per 200 clinics."""
    return schemas_where(
        schemas,
        table=NextAvailable._meta.db_table,
        sql=_next_available_stale_sql(),
        params=_next_available_stale_params(),
    )

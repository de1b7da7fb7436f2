"""What scenarios 2-6 share about the bench clinic (bench/seed.py made it): its objects' ids,
JWTs minted in-process, distinct free booking slots, and the database checks they all end with.

The harness process has Django set up against the bench database; everything here runs inside
the bench clinic's schema.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bench.harness import BENCH_HOST_SLUG, Check, Context
from bench.seed import (
    BENCH_SPECIALTY,
    FRONT_DESK_EMAIL,
    INTEGRATOR_EMAIL,
    THERAPY_TYPE,
    VISIT_TYPE,
)

UTC = ZoneInfo("UTC")
# Direct bookings and races take slots this many days ahead: the seed leaves them free.
BOOKING_DAYS = (50, 110)


@contextmanager
def in_bench():
    from django_tenants.utils import schema_context

    with schema_context(BENCH_HOST_SLUG):
        yield


@dataclass(frozen=True)
class BenchIds:
    visit_type: int
    therapy_type: int
    specialty: str
    front_desk: int
    integrator: int


def bench_ids() -> BenchIds:
    from accounts.models import User
    from scheduling.models import AppointmentType

    with in_bench():
        types = dict(
            AppointmentType.objects.filter(name__in=(VISIT_TYPE, THERAPY_TYPE)).values_list(
                "name", "pk"
            )
        )
        users = dict(
            User.objects.filter(email__in=(FRONT_DESK_EMAIL, INTEGRATOR_EMAIL)).values_list(
                "email", "pk"
            )
        )
    return BenchIds(
        visit_type=types[VISIT_TYPE],
        therapy_type=types[THERAPY_TYPE],
        specialty=BENCH_SPECIALTY[0],
        front_desk=users[FRONT_DESK_EMAIL],
        integrator=users[INTEGRATOR_EMAIL],
    )


def access_token(ctx: Context, email: str) -> str:
    """A fresh access JWT (15 minutes) for a bench-clinic user, minted as the API mints them (it
    carries the clinic's schema and the user's roles) and signed with the servers' JWT keys
    (`server_env` hands them this process's environment: scripts/with-services' keys). Mint
    one per measurement."""
    from accounts.auth import ClinicTokenObtainPairSerializer
    from accounts.models import User

    with in_bench():
        user = User.objects.get(email=email)
        return str(ClinicTokenObtainPairSerializer.get_token(user).access_token)


def bearer(ctx: Context, email: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token(ctx, email)}"}


class FreeSlots:
    """Distinct free slots `(practitioner id, start in UTC)` of the 30-minute visit, on the
    30-minute grid of each practitioner's working hours (local wall clock), `BOOKING_DAYS`
    ahead. Consecutive slots go to different practitioners (a booking locks its practitioner's
    row, so neighbours in the list do not queue behind each other). A slot is skipped when an
    active appointment's blocked range or time off overlaps it in the database, and never
    handed out twice by one generator: one generator per scenario run means the capacity and
    latency runs never repeat a slot, and the database check means later runs do not either."""

    def __init__(self, *, days: tuple[int, int] = BOOKING_DAYS, minutes: int = 30):
        self.days = days
        self.duration = timedelta(minutes=minutes)
        self._iter = self._generate()

    def take(self, n: int) -> list[tuple[int, datetime]]:
        slots = list(itertools.islice(self._iter, n))
        if len(slots) < n:
            raise RuntimeError(f"only {len(slots)} free slots left of {n} wanted")
        return slots

    def _generate(self) -> Iterator[tuple[int, datetime]]:
        from django.utils import timezone

        from scheduling.models import WorkingHours

        with in_bench():
            ids = bench_ids()
            from scheduling.models import AppointmentType

            offering = set(
                AppointmentType.objects.get(pk=ids.visit_type)
                .practitioners.filter(is_active=True)
                .values_list("pk", "timezone")
            )
            hours = defaultdict(list)
            for row in WorkingHours.objects.filter(location__isnull=False).values_list(
                "practitioner_id", "weekday", "start_time", "end_time"
            ):
                hours[row[0]].append(row[1:])
        practitioners = sorted(offering)
        today = timezone.localdate()
        for offset in range(self.days[0], self.days[1] + 1):
            day = today + timedelta(days=offset)
            candidates = []  # (grid index, practitioner, start)
            for pk, zone in practitioners:
                tz = ZoneInfo(zone)
                for weekday, begin, end in hours.get(pk, ()):
                    if weekday != day.weekday():
                        continue
                    local = datetime.combine(day, begin)
                    last = datetime.combine(day, end) - self.duration
                    index = 0
                    while local <= last:
                        candidates.append((index, pk, local.replace(tzinfo=tz).astimezone(UTC)))
                        local += timedelta(minutes=30)
                        index += 1
            if not candidates:
                continue
            busy = self._busy(day)
            candidates.sort(key=lambda c: (c[0], c[1]))
            for _, pk, start in candidates:
                end = start + self.duration
                if any(lo < end and start < hi for lo, hi in busy.get(pk, ())):
                    continue
                yield pk, start

    @staticmethod
    def _busy(day: date) -> dict[int, list[tuple[datetime, datetime]]]:
        from scheduling.models import ACTIVE_STATUSES, Appointment, TimeOff

        lo = datetime.combine(day - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        hi = lo + timedelta(days=3)
        busy: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
        with in_bench():
            for pk, blocked in Appointment.objects.filter(
                status__in=ACTIVE_STATUSES, start__lt=hi, end__gt=lo
            ).values_list("practitioner_id", "blocked"):
                busy[pk].append((blocked.lower, blocked.upper))
            for pk, start, end in TimeOff.objects.filter(start__lt=hi, end__gt=lo).values_list(
                "practitioner_id", "start", "end"
            ):
                busy[pk].append((start, end))
        return busy


# --- Checks every scenario ends with ----------------------------------------------------------


def no_overlaps() -> Check:
    from scheduling.selectors import appointments_overlapping

    with in_bench():
        pairs = appointments_overlapping()
    return Check(
        "no overlapping active appointments",
        not pairs,
        f"{len(pairs)} overlapping pairs, e.g. {pairs[:3]}" if pairs else "",
    )


def ledger_consistent() -> list[Check]:
    """No line overdrawn (the SQL of issue 5), and every line's counters equal its ledger."""
    from authorizations.selectors import ledger_mismatches

    with in_bench():
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM authorizations_authorizationline "
                "WHERE units_scheduled + units_used > units_authorized "
                "OR units_scheduled < 0 OR units_used < 0"
            )
            overdrawn = [row[0] for row in cursor.fetchall()]
        mismatched = ledger_mismatches()
    return [
        Check("no line overdrawn", not overdrawn, f"lines {overdrawn[:10]}" if overdrawn else ""),
        Check(
            "ledger = counters",
            not mismatched,
            f"lines {mismatched[:10]} differ from their ledger" if mismatched else "",
        ),
    ]

"""Faults (issue 21, part 0): answers by status before, during and after Redis hangs and
PostgreSQL restarts.

The bench database is copied into a PostgreSQL of the scenario's own, beside a Redis of its own
(tests/faults.py: the embedded servers `make run` uses), and a granian serves them with the
production settings (pool of 4). Four threads send, round-robin, the public search, one
practitioner-day of availability, an appointment list, a booking of a free slot, a patient
page and `/health/`, while the scenario

- hangs Redis (SIGSTOP) for `REDIS_HANG_S`, then resumes it;
- shuts PostgreSQL down (fast) for `POSTGRES_DOWN_S`, then starts it again.

Each fault starts once `/health/` answers 200 (the worker answering after start-up or after
the last fault). Each phase is a row: the answers by status (`errors_by_kind` holds every
status's count) and the answer times; an answer belongs to the phase its request was sent in,
except one sent before a fault and answered during it, which is the fault's. Broken (counted
as 5xx): any 500, and a 503 anywhere but while PostgreSQL is down or in the 2 s after it is
back (`recovering`); a 503 while it is down without `Retry-After` too. `/health/` answering 503
after Redis hung, until the worker answers its ping again, is its job: shown, not counted.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from itertools import count

from bench.bench_clinic import FreeSlots, bearer, bench_ids
from bench.harness import Check, Context, Row, scenario
from bench.load import percentile
from bench.seed import FRONT_DESK_EMAIL

REDIS_HANG_S = 10
POSTGRES_DOWN_S = 5
BEFORE_S = 3
RECOVERING_S = 2
AFTER_S = 5
THREADS = 4


class _Driver:
    """Threads sending the request mix, each answer tagged with the phase it was sent in."""

    def __init__(self, stack, host_slug: str, requests: list, bookings: Iterator[dict]):
        self.stack = stack
        self.slug = host_slug
        self.requests = requests
        self.bookings = bookings  # an iterator shared by the faults: each slot booked once
        self.phase = "before"
        self.answers: list[tuple[str, str, int, float, bool]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._n = count()

    def _one(self) -> None:
        kind, method, path, headers, body = self.requests[next(self._n) % len(self.requests)]
        if kind == "booking":
            with self._lock:
                body = next(self.bookings, None)
            if body is None:
                return
        sent_in = self.phase
        token = headers.get("Authorization", "").removeprefix("Bearer ") or None
        accept = "text/html" if kind == "page" else "application/json"
        try:
            status, answer_headers, _, took = self.stack.call(
                self.slug, method, path, token=token, body=body, accept=accept, timeout=30
            )
            retry_after = "Retry-After" in answer_headers
        except OSError:
            status, took, retry_after = 0, 30.0, False
        # A request the fault began under (sent before it, answered during it) is the fault's:
        # a read in flight when PostgreSQL shuts down is answered 503, as it should be.
        phase = "during" if self.phase == "during" else sent_in
        with self._lock:
            self.answers.append((phase, kind, status, took * 1000, retry_after))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._one()

    def __enter__(self):
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(THREADS)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def _rows(
    fault: str, answers: list, allowed_503: set[str], health_503: frozenset[str] = frozenset()
) -> list[Row]:
    """A row per phase; a 503 is broken outside `allowed_503` (and there without
    `Retry-After`), a `/health/` 503 outside `health_503` too."""
    rows = []
    for phase in ("before", "during", "recovering", "after"):
        mine = [a for a in answers if a[0] == phase]
        if not mine:
            continue
        statuses = Counter(str(a[2]) for a in mine)
        times = sorted(a[3] for a in mine)
        broken = sum(
            1
            for a in mine
            if a[2] == 0
            or a[2] >= 500
            and not (a[2] == 503 and phase in allowed_503 and a[4])
            and not (a[2] == 503 and a[1] == "health" and phase in health_503)
        )
        by_kind = Counter(f"{a[1]} {a[2]}" for a in mine)
        rows.append(
            Row(
                scenario="faults",
                label=f"{fault}: {phase}",
                offered=f"closed, {THREADS} threads",
                achieved_rps=None,
                p50_ms=round(percentile(times, 50), 1),
                p95_ms=round(percentile(times, 95), 1),
                p99_ms=round(percentile(times, 99), 1),
                max_ms=round(times[-1], 1),
                errors=sum(n for s, n in statuses.items() if s != "200" and s != "201"),
                errors_by_kind=dict(sorted(statuses.items())),
                server_errors=broken,
                notes=", ".join(f"{k}: {v}" for k, v in sorted(by_kind.items())),
            )
        )
    return rows


def _steady(stack, slug: str, timeout_s: float = 60.0) -> None:
    """Until `/health/` answers 200 (the worker answering its ping after start-up or after the
    last fault): each fault starts from a steady state."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if stack.call(slug, "GET", "/health/", timeout=10)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"/health/ did not answer 200 within {timeout_s:g} s:\n{stack.logs()}")


def _run(driver: _Driver, during_s: float, start_fault, end_fault) -> None:
    time.sleep(BEFORE_S)
    driver.phase = "during"
    start_fault()
    time.sleep(during_s)
    end_fault()
    driver.phase = "recovering"
    time.sleep(RECOVERING_S)
    driver.phase = "after"
    time.sleep(AFTER_S)


@scenario("faults", title="Faults: Redis hung, PostgreSQL restarted", order=85)
def faults(ctx: Context) -> list[Row]:
    from tests.faults import fault_stack

    ids = bench_ids()
    staff = bearer(ctx, FRONT_DESK_EMAIL)
    slots = FreeSlots().take(400)
    from bench.scenarios.booking import booking_requests

    bookings = iter([r.body for r in booking_requests(slots, type_id=ids.visit_type,
                                                      tag="faults", headers=staff)])  # fmt: skip
    from datetime import timedelta

    from django.utils import timezone

    day = (timezone.localdate() + timedelta(days=7)).isoformat()
    requests = [
        ("read", "GET", f"/api/v1/practitioners/?specialty={ids.specialty}", {}, None),
        ("read", "GET", f"/api/v1/availability/?specialty={ids.specialty}"
                        f"&appointment_type={ids.visit_type}&start={day}&end={day}", {}, None),
        ("read", "GET", "/api/v1/appointments/", staff, None),
        ("booking", "POST", "/api/v1/appointments/", staff, None),
        ("page", "GET", "/", {}, None),
        ("health", "GET", "/health/", {}, None),
    ]  # fmt: skip
    stack = fault_stack(database_url=ctx.database_url)
    rows: list[Row] = []
    try:
        redis_hang = min(REDIS_HANG_S, 3) if ctx.smoke else REDIS_HANG_S
        _steady(stack, "bench")
        with _Driver(stack, "bench", requests, bookings) as driver:
            _run(driver, redis_hang, stack.redis.hang, stack.redis.resume)
        # /health/ is 503 while Redis is down and until the worker answers its ping again (it
        # reconnects to the broker with its own backoff): that is its job, shown, not counted.
        rows += _rows(
            f"Redis hung {redis_hang} s", driver.answers, allowed_503=set(),
            health_503=frozenset({"during", "recovering", "after"}),
        )  # fmt: skip
        _steady(stack, "bench")
        with _Driver(stack, "bench", requests, bookings) as driver:
            _run(driver, POSTGRES_DOWN_S, stack.postgres.stop_fast, stack.postgres.start)
        rows += _rows(
            f"PostgreSQL down {POSTGRES_DOWN_S} s", driver.answers,
            allowed_503={"during", "recovering"},
        )  # fmt: skip
    finally:
        stack.stop()
        shutil.rmtree(stack.workdir, ignore_errors=True)
    if rows:
        rows[0].checks.append(Check("fault stack ran", True, str(stack.workdir)))
    return rows

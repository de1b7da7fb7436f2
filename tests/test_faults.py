"""Faults survived (issue 21, part 0): the app served by granian and a Celery worker against a
Redis and a PostgreSQL of the test's own (tests/faults.py), which the test hangs (SIGSTOP),
shuts down and starts again.

- Redis hung: reads answer from PostgreSQL, bookings are made, smart-booking requests are
  accepted (202) with their job rows written, no 5xx; when Redis is back, the sweep queues the
  jobs whose publish failed and every one of them completes.
- PostgreSQL restarted: while it is down every answer is a 503 with `Retry-After` (problem JSON
  for the API and probes, the friendly page for the patient pages), quickly, never a 500 or a
  hang; from 2 s after it is back, every answer is right again (pooled connections replaced).
"""

import time
from datetime import timedelta

import pytest

from realtime.tests.sockets import access_token, practice
from scheduling.tests import factories as f
from tests.faults import fault_stack

pytestmark = pytest.mark.live

# Seconds Redis stays hung. The drill held it 30 s; the claims (no 5xx, answers within
# the budget once the breaker is open, no job lost) are the same after the first seconds, and
# 10 s keeps the test short.
REDIS_HANG_SECONDS = 10
POSTGRES_DOWN_SECONDS = 5
# Bookings and smart-booking requests (each) made while Redis hangs: enough to prove none is
# lost, few enough that one solo worker completes the jobs within the wait below on a busy
# machine and that the world's free slots outlast the bookings, so each job can complete.
SMART_JOBS = 16


def _reads(world) -> list[str]:
    day = world.day.isoformat()
    return [
        "/api/v1/practitioners/?specialty=behavior-analysis",
        f"/api/v1/availability/?practitioner={world.practitioner_id}"
        f"&appointment_type={world.type_id}&start={day}&end={day}&tz=America/New_York",
        "/api/v1/appointments/",
    ]


def _summary(answers) -> str:
    """`kind status: count, median ms, max ms` of each kind and status (printed with -s)."""
    groups: dict[tuple, list[float]] = {}
    for kind, status, took in answers:
        groups.setdefault((kind, status), []).append(took * 1000)
    return "; ".join(
        f"{kind} {status}: {len(times)}, median {sorted(times)[len(times) // 2]:.0f} ms, "
        f"max {max(times):.0f} ms"
        for (kind, status), times in sorted(groups.items(), key=lambda item: str(item[0]))
    )


def _booking(world, n: int) -> dict:
    day = world.day + timedelta(days=1 + n // 8)
    return {
        "patient": world.patient_id,
        "practitioner": world.practitioner_id,
        "appointment_type": world.type_id,
        "start": f.local(day, 9 + n % 8).isoformat(),
    }


def test_redis_hung_reads_and_bookings_answer_and_no_smart_job_is_lost(committed_acme, make_user):
    acme = committed_acme
    world = practice(acme)
    token = access_token(acme, make_user(acme, "integrator"))
    stack = fault_stack()
    try:
        reads = _reads(world)
        for path in reads:
            status, _, body, _ = stack.call("acme", "GET", path, token=token)
            assert status == 200, (path, body, stack.logs())

        stack.redis.hang()
        answers: list[tuple[str, int, float]] = []
        jobs: list[str] = []
        n = 0
        next_booking = time.monotonic()
        until = next_booking + REDIS_HANG_SECONDS
        while time.monotonic() < until:
            for path in reads:
                status, _, body, took = stack.call("acme", "GET", path, token=token)
                answers.append(("read", status, took))
                assert status == 200, (path, status, body, stack.logs())
            if n >= SMART_JOBS or time.monotonic() < next_booking:
                time.sleep(0.05)  # reads between: the bookings spread over the whole hang
                continue
            next_booking += REDIS_HANG_SECONDS / SMART_JOBS
            status, _, body, took = stack.call(
                "acme", "POST", "/api/v1/appointments/", token=token, body=_booking(world, n)
            )
            answers.append(("booking", status, took))
            assert status == 201, (status, body, stack.logs())
            n += 1
            status, headers, body, took = stack.call(
                "acme", "POST", "/api/v1/smart-bookings/", token=token, body=world.smart_request()
            )
            answers.append(("smart", status, took))
            assert status == 202 or (status == 503 and "Retry-After" in headers), (status, body)
            if status == 202:
                jobs.append(body["job_id"])
        stack.redis.resume()
        print(f"\nRedis hung {REDIS_HANG_SECONDS} s: {_summary(answers)}")

        assert not [a for a in answers if a[1] >= 500 and a[0] != "smart"], answers
        assert jobs, "no smart-booking request was accepted while Redis hung"
        read_times = sorted(took for kind, _, took in answers if kind == "read")
        # Once the breaker is open, a read costs no Redis wait at all: the median read is far
        # below the 5 s every request waited before (and the budget's ~0.1 s per Redis call).
        assert read_times[len(read_times) // 2] < 1.0, read_times

        # The sweep (every 30 s from the beat) queues the jobs left queued for
        # SMART_BOOKING_STUCK_SECONDS (2 s here); the worker completes every one.
        time.sleep(2.5)
        stack.sweep()
        deadline = time.monotonic() + 180  # "never lost", not "fast": a loaded machine is slow
        pending = set(jobs)
        while pending and time.monotonic() < deadline:
            for job_id in list(pending):
                status, _, job, _ = stack.call(
                    "acme", "GET", f"/api/v1/smart-bookings/{job_id}/", token=token
                )
                assert status == 200, (status, job)
                if job["status"] in ("completed", "failed"):
                    assert job["status"] == "completed", job
                    pending.discard(job_id)
            if pending:
                time.sleep(0.5)
                if time.monotonic() > deadline - 60:
                    stack.sweep()  # a job queued while Redis was half back: the beat again
        assert not pending, f"smart-booking jobs lost: {pending}\n{stack.logs()}"
        print(f"{len(jobs)} smart-booking jobs accepted while Redis hung, all completed")
    finally:
        stack.stop()


def test_postgres_restarted_answers_503_while_down_and_nothing_but_success_after(
    committed_acme, make_user
):
    acme = committed_acme
    world = practice(acme)
    token = access_token(acme, make_user(acme, "integrator"))
    stack = fault_stack()
    try:
        reads = _reads(world)

        def round_of(n: int) -> list[tuple[str, int, dict, object, float]]:
            out = []
            for path in reads:
                status, headers, body, took = stack.call("acme", "GET", path, token=token)
                out.append((path, status, headers, body, took))
            status, headers, body, took = stack.call(
                "acme", "POST", "/api/v1/appointments/", token=token, body=_booking(world, n)
            )
            out.append(("booking", status, headers, body, took))
            status, headers, body, took = stack.call("acme", "GET", "/", accept="text/html")
            out.append(("portal", status, headers, body, took))
            status, headers, body, took = stack.call("acme", "GET", "/health/")
            out.append(("health", status, headers, body, took))
            return out

        before = round_of(0)
        assert [a[1] for a in before] == [200, 200, 200, 201, 200, 200], (before, stack.logs())

        stack.postgres.stop_fast()
        down: list = []
        n = 1
        until = time.monotonic() + POSTGRES_DOWN_SECONDS
        while time.monotonic() < until:
            down += round_of(n)
            n += 1
        print(f"\nPostgreSQL down: {_summary([(a[0], a[1], a[4]) for a in down])}")
        for what, status, headers, body, took in down:
            assert status == 503, (what, status, body, stack.logs())
            assert headers.get("Retry-After", "").isdigit(), (what, headers)
            assert took < 2.5, (what, took)  # the pool gives up after DB_POOL_TIMEOUT (1 s)
            if what == "portal":
                assert "We'll be right back" in body, body
            elif what == "health":
                assert body["checks"]["database"]["status"] == "down", body
            else:
                assert body["code"] == "database-unavailable", body

        stack.postgres.start()
        back = time.monotonic()
        early = []
        while time.monotonic() < back + 2:
            early += round_of(n)
            n += 1
        # Between the start and 2 s after: a 503 at most (a connection still being replaced).
        assert all(a[1] in (200, 201, 503) for a in early), early
        after = []
        while time.monotonic() < back + 7:
            after.append(round_of(n))
            n += 1
        print(f"recovering (0-2 s): {_summary([(a[0], a[1], a[4]) for a in early])}")
        flat = [(a[0], a[1], a[4]) for rnd in after for a in rnd]
        print(f"after (2-7 s): {_summary(flat)}")
        for rnd in after:
            assert [a[1] for a in rnd] == [200, 200, 200, 201, 200, 200], (rnd, stack.logs())
    finally:
        stack.stop()

"""Server CPU per request on the shared request path, in-process: `django.test.Client` against
the seeded bench database (bench/seed.py), DEBUG=0, the bench servers' settings (bench/run.py
server_env and start_web: LOG_LEVEL=WARNING, request log on, a pool of 4 connections). GET
requests only: nothing is written.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/clinic_m_bench \\
           REDIS_URL=redis://127.0.0.1:6379/7
    DEBUG=0 LOG_LEVEL=WARNING DJANGO_SETTINGS_MODULE=bench.settings \\
      scripts/with-services .venv/bin/python bench/request_path.py [N] [--profile NAME]

Prints CPU ms per request (time.process_time; N requests per round, 5 rounds: the best and the
median) and the statements per request (`SET search_path` included) for the ceiling view, an
authenticated GET (/api/v1/practitioners/ with the integrator's JWT: staff get the full
directory, not the shared answer), /api/v1/claims/ (its first page) and the A/R aging by
patient (its third page). `--profile NAME` runs
cProfile over N requests of one of them instead (the stats also go to /tmp/rp-NAME.prof).
`--audit-write` times the audit writer instead: one write of 1,000 read events (as twenty claims
pages record them) into the bench clinic, 5 times (the rows stay: the table is append-only).
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("THROTTLE_ANON", "100000000/min")
os.environ.setdefault("THROTTLE_USER", "100000000/min")
os.environ.setdefault("DB_POOL_MAX_SIZE", "4")  # the web server's pool (bench/servers.py)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from bench.bench_clinic import bench_ids, in_bench  # noqa: E402
from bench.harness import BENCH_HOST_SLUG  # noqa: E402
from bench.seed import INTEGRATOR_EMAIL  # noqa: E402
from clinic.wsgi import settle  # noqa: E402

ROUNDS = 5


def token() -> str:
    from django_tenants.utils import schema_context

    from accounts.auth import ClinicTokenObtainPairSerializer
    from accounts.models import User

    with schema_context(BENCH_HOST_SLUG):
        user = User.objects.get(email=INTEGRATOR_EMAIL)
        return str(ClinicTokenObtainPairSerializer.get_token(user).access_token)


def audit_write(n: int = 1000, rounds: int = 5) -> None:
    """The audit writer's cost off the request path: `events_write` of `n` read events (as a
    claims page records them) into the bench clinic, client CPU and wall per call."""
    from django.utils import timezone

    from audit import services

    events = [
        services.Event(
            occurred_at=timezone.now(),
            schema_name=BENCH_HOST_SLUG,
            action=services.READ,
            patient_id=i,
            model=("billing", "claim"),
            object_id=str(i),
            ip="127.0.0.1",
            request_id="bench-audit-write",
            method="GET",
            path="/api/v1/claims/",
        )  # fmt: skip
        for i in range(n)
    ]
    cpu, wall = [], []
    for _ in range(rounds):
        started, elapsed = time.process_time(), time.perf_counter()
        services.events_write(events)
        cpu.append((time.process_time() - started) * 1000)
        wall.append((time.perf_counter() - elapsed) * 1000)
    print(
        f"audit write    {n} events per write       CPU ms best {min(cpu):5.2f} median "
        f"{statistics.median(cpu):5.2f}  wall median {statistics.median(wall):5.2f}"
    )


def _next_weekday() -> str:
    """A working day after the seed's appointments thin out is not needed: any weekday ahead
    (the bench's working hours are Monday to Friday)."""
    from datetime import date, timedelta

    day = date.today() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day.isoformat()


def main() -> None:
    args = sys.argv[1:]
    if "--audit-write" in args:
        audit_write()
        return
    profile = None
    if "--profile" in args:
        profile = args[args.index("--profile") + 1]
        del args[args.index("--profile") : args.index("--profile") + 2]
    n = int(args[0]) if args else 300
    host = f"{BENCH_HOST_SLUG}.{settings.CLINIC_BASE_DOMAIN}"
    client = Client(HTTP_HOST=host)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token()}"}
    day, ids = _next_weekday(), bench_ids()
    with in_bench():
        from practice.models import Practitioner

        one = Practitioner.objects.filter(specialties__slug=ids.specialty).order_by("pk")[0].pk
    day_path = (
        f"/api/v1/availability/?practitioner={one}&appointment_type={ids.visit_type}"
        f"&start={day}&end={day}&tz=America/New_York"
    )
    cases = {
        "ceiling": ("/bench/ceiling/", {}),
        # the peer's unit of work: one practitioner's slots for one day (computed when the
        # answer cache is off: ANSWER_CACHE_SECONDS=0 in the environment)
        "availability-day": (day_path, {}),
        "availability-day-auth": (day_path, auth),
        "search": ("/api/v1/practitioners/?specialty=bench-twenty&language=es&page_size=20", {}),
        "practitioners": ("/api/v1/practitioners/", auth),
        "claims": ("/api/v1/claims/", auth),
        "aging-patient": ("/api/v1/reports/ar-aging/?by=patient&page=3", auth),
    }
    for name, (path, headers) in cases.items():
        if profile and name != profile:
            continue
        for _ in range(30):  # warm: imports, caches, connection
            response = client.get(path, **headers)
            assert response.status_code == 200, (path, response.status_code, response.content[:300])
        settle()  # as the servers do once started: start-up's objects frozen out of the GC
        queries: list[str] = []

        def count(execute, sql, *rest, queries=queries):
            queries.append(sql)
            return execute(sql, *rest)

        with connection.execute_wrapper(count):
            client.get(path, **headers)
        if profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile(time.process_time)  # CPU, not waits
            profiler.enable()
            for _ in range(n):
                client.get(path, **headers)
            profiler.disable()
            profiler.dump_stats(f"/tmp/rp-{name}.prof")
            stats = pstats.Stats(profiler)
            stats.sort_stats("cumulative").print_stats(70)
            continue
        cpu, wall = [], []
        for _ in range(ROUNDS):  # the machine is shared: the best and the median of the rounds
            started, elapsed = time.process_time(), time.perf_counter()
            for _ in range(n):
                client.get(path, **headers)
            cpu.append((time.process_time() - started) / n * 1000)
            wall.append((time.perf_counter() - elapsed) / n * 1000)
        print(
            f"{name:14} {path:24} CPU ms/request best {min(cpu):5.2f} median "
            f"{statistics.median(cpu):5.2f}  wall median {statistics.median(wall):5.2f}  "
            f"{len(queries)} queries"
        )


if __name__ == "__main__":
    main()

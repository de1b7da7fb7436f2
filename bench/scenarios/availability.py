"""Scenario 2 (scheduling issue): availability for one specialty with 20 practitioners over 14
days, anonymous: `GET /api/v1/availability/?specialty=bench-twenty&appointment_type=<30-min
visit>&start=<day>&end=<day + 13>&tz=America/New_York`, the window starting on each of the next
7 days in turn (the seed's appointments fill the next 45 days, so every window has busy slots).
Capacity at 50 connections (target ≥ 0.15 × the tenant ceiling) and latency at 100 req/s
offered (target p99 ≤ 50 ms). Afterwards the answer's slots for two windows must equal
`scheduling.availability.availability` computed in-process."""

import json
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bench.bench_clinic import bench_ids, in_bench
from bench.harness import Check, Context, Row, Target, load_mix, row_from, scenario
from bench.load import Request
from bench.servers import http_get

TZ = "America/New_York"
DAYS = 14
WINDOWS = 7  # first day of the window: tomorrow .. in 7 days
LATENCY_RATE = 100
LATENCY_TARGET = Target(p99_ms=50)
CAPACITY_TARGET = Target(ratio_min=0.15)


def _first_days() -> list[date]:
    today = datetime.now(ZoneInfo(TZ)).date()
    return [today + timedelta(days=n) for n in range(1, WINDOWS + 1)]


def availability_path(type_id: int, specialty: str, first: date) -> str:
    last = first + timedelta(days=DAYS - 1)
    return (
        f"/api/v1/availability/?specialty={specialty}&appointment_type={type_id}"
        f"&start={first.isoformat()}&end={last.isoformat()}&tz={TZ}"
    )


@load_mix("availability")
def availability_requests(ctx: Context) -> list[Request]:
    ids = bench_ids()
    return [Request(availability_path(ids.visit_type, ids.specialty, d)) for d in _first_days()]


def _in_process(type_id: int, specialty: str, first: date) -> set[tuple[int, datetime, datetime]]:
    from scheduling.availability import availability
    from scheduling.models import AppointmentType

    tz = ZoneInfo(TZ)
    with in_bench():
        results = availability(
            appointment_type=AppointmentType.objects.get(pk=type_id),
            start=datetime.combine(first, time.min, tzinfo=tz),
            end=datetime.combine(first + timedelta(days=DAYS), time.min, tzinfo=tz),
            specialty=specialty,
        )
    return {(r.practitioner.pk, s.start, s.end) for r in results for s in r.slots}


def answers_match_selector(ctx: Context) -> Check:
    """The API's slots for the first and the last window equal the selector's, in-process."""
    ids = bench_ids()
    wrong, compared = [], 0
    for first in (_first_days()[0], _first_days()[-1]):
        status, body = http_get(
            ctx.web.port, availability_path(ids.visit_type, ids.specialty, first), ctx.host()
        )
        if status != 200:
            wrong.append(f"{first}: HTTP {status}")
            continue
        data = json.loads(body)
        api = {
            (p["id"], datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"]))
            for p in data["practitioners"]
            for s in p["slots"]
        }
        expected = _in_process(ids.visit_type, ids.specialty, first)
        compared += len(expected)
        if len(data["practitioners"]) != 20:
            wrong.append(f"{first}: {len(data['practitioners'])} practitioners, not 20")
        if api != expected:
            wrong.append(
                f"{first}: {len(api - expected)} slots only in the API, "
                f"{len(expected - api)} only in the selector"
            )
    return Check(
        "slots equal scheduling.availability", not wrong, "; ".join(wrong) or f"{compared} slots"
    )


@scenario(
    "availability",
    title="Scenario 2: availability, one specialty (20 practitioners) x 14 days, anonymous",
    order=25,
    needs_ceiling=True,
    smoke=True,
)
def availability(ctx: Context) -> list[Row]:
    requests = availability_requests(ctx)
    rows = []
    if not ctx.smoke:
        cap = ctx.capacity(requests)
        rows.append(
            row_from(
                "availability",
                "availability: capacity",
                cap,
                target=CAPACITY_TARGET,
                ceiling_rps=ctx.ceiling_rps,
            )
        )
    lat = ctx.latency(lambda i: requests[i % len(requests)], rate=LATENCY_RATE)
    rows.append(
        row_from(
            "availability",
            "availability: latency",
            lat,
            target=LATENCY_TARGET,
            checks=[answers_match_selector(ctx)],
            notes=f"20 practitioners x {DAYS} days, 30-min visit, 15-min grid; as configured: "
            "answers shared through Redis until the schedule changes, for the minute at most",
        )
    )
    if not ctx.smoke:
        server = ctx.start_web_uncached()
        try:
            cap = ctx.capacity(requests, server=server)
            lat = ctx.latency(lambda i: requests[i % len(requests)], rate=LATENCY_RATE,
                              server=server)  # fmt: skip
        finally:
            ctx.stack.stop(server)
        note = "ANSWER_CACHE_SECONDS=0 (second granian, same flags): every answer from the "
        note += "database (two queries; computing and rendering memoised per process)"
        rows += [
            row_from(
                "availability",
                "availability, answer cache off: capacity",
                cap,
                target=CAPACITY_TARGET,
                ceiling_rps=ctx.ceiling_rps,
                notes=note,
            ),
            row_from(
                "availability",
                "availability, answer cache off: latency",
                lat,
                target=LATENCY_TARGET,
                notes=note,
            ),
        ]
    return rows

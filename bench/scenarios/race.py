"""Scenario 4 (scheduling issue): 200 concurrent bookings of the same slot.

For each of a few free slots (`bench_clinic.FreeSlots`), 200 connections are opened first, then
every one of them sends its `POST /api/v1/appointments/` (the same practitioner, type and start,
200 different patients) at once, on raw asyncio streams, and waits for its answer. Exactly one
must be 201 and the other 199 a 409 (`slot-unavailable`), with no 5xx and no connection error;
afterwards the database must hold exactly one active appointment at each slot and no overlap.
The figures are the answer times from the common send (how long the last loser waited)."""

import asyncio
import json
import time
from collections import Counter
from urllib.parse import urlsplit

from bench.bench_clinic import FreeSlots, bearer, bench_ids, in_bench, no_overlaps
from bench.harness import Check, Context, Row, scenario
from bench.load import Request, _read_response, percentile
from bench.scenarios.booking import booking_requests
from bench.seed import FRONT_DESK_EMAIL

CONCURRENT = 200
SLOTS = 3
SMOKE_CONCURRENT = 50
SMOKE_SLOTS = 1
TIMEOUT_S = 120


async def _fire(base_url: str, host: str, requests: list[Request]) -> dict:
    """Open one connection per request, then send them all at once; statuses, bodies, times."""
    target = urlsplit(base_url)
    connections = await asyncio.gather(
        *(asyncio.open_connection(target.hostname, target.port) for _ in requests)
    )
    payloads = [r.encode(host) for r in requests]
    started = time.perf_counter()

    async def one(conn, payload: bytes):
        reader, writer = conn
        try:
            writer.write(payload)
            await writer.drain()
            status, body, _ = await asyncio.wait_for(_read_response(reader), TIMEOUT_S)
            return status, body, (time.perf_counter() - started) * 1000, None
        except Exception as exc:  # noqa: BLE001  (every failure is counted, none hidden)
            return None, b"", (time.perf_counter() - started) * 1000, type(exc).__name__
        finally:
            writer.close()

    results = await asyncio.gather(
        *(one(conn, payload) for conn, payload in zip(connections, payloads, strict=True))
    )
    return {"results": results, "elapsed_s": time.perf_counter() - started}


def _active_at(practitioner: int, start) -> int:
    from scheduling.models import ACTIVE_STATUSES, Appointment

    with in_bench():
        return Appointment.objects.filter(
            practitioner_id=practitioner, start=start, status__in=ACTIVE_STATUSES
        ).count()


@scenario(
    "race",
    title="Scenario 4: 200 concurrent bookings of the same slot",
    order=35,
    smoke=True,
)
def race(ctx: Context) -> list[Row]:
    ids = bench_ids()
    concurrent = SMOKE_CONCURRENT if ctx.smoke else CONCURRENT
    slots = FreeSlots().take(SMOKE_SLOTS if ctx.smoke else SLOTS)
    headers = bearer(ctx, FRONT_DESK_EMAIL)
    statuses: Counter[str] = Counter()
    transport: Counter[str] = Counter()
    latencies: list[float] = []
    per_slot, wrong, elapsed = [], [], 0.0
    for n, slot in enumerate(slots):
        tag = f"bench race {int(time.time())} slot {n}"
        requests = booking_requests([slot] * concurrent, type_id=ids.visit_type, tag=tag,
                                    headers=headers)  # fmt: skip
        outcome = asyncio.run(_fire(ctx.web.base_url, ctx.host(), requests))
        elapsed += outcome["elapsed_s"]
        codes: Counter[str] = Counter()
        for status, body, ms, error in outcome["results"]:
            if error:
                transport[error] += 1
                continue
            codes[str(status)] += 1
            latencies.append(ms)
            if status == 409:
                problem = json.loads(body)
                if "suggested_alternatives" not in problem:
                    wrong.append(f"slot {n}: a 409 without suggested_alternatives")
        statuses.update(codes)
        in_db = _active_at(*slot)
        per_slot.append(f"{slot[1]:%Y-%m-%d %H:%M}Z: {dict(codes)}, {in_db} in the database")
        if codes.get("201") != 1 or codes.get("409") != concurrent - 1:
            wrong.append(f"slot {n}: {dict(codes)}")
        if in_db != 1:
            wrong.append(f"slot {n}: {in_db} active appointments in the database")
    latencies.sort()
    answered = sum(statuses.values())
    errors = {k: v for k, v in statuses.items() if k not in ("201", "409")}
    errors.update(transport)
    return [
        Row(
            scenario="race",
            label=f"race: {concurrent} at once x {len(slots)} slot(s)",
            offered=f"{concurrent} concurrent",
            achieved_rps=round(answered / elapsed, 1) if elapsed else None,
            p50_ms=percentile(latencies, 50),
            p95_ms=percentile(latencies, 95),
            p99_ms=percentile(latencies, 99),
            max_ms=latencies[-1] if latencies else None,
            errors=sum(errors.values()),
            errors_by_kind=errors,
            server_errors=sum(v for k, v in statuses.items() if k.startswith("5")),
            transport_errors=sum(transport.values()),
            target="exactly one 201, every other 409",
            passed=not wrong and not errors,
            checks=[
                Check(
                    "exactly one booking per slot, every other request 409",
                    not wrong,
                    "; ".join(wrong[:5]),
                ),  # fmt: skip
                no_overlaps(),
            ],
            notes="; ".join(per_slot),
            data={"statuses": dict(statuses), "transport_errors": dict(transport)},
        )
    ]

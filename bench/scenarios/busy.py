"""Busy clinic (issue 21, part 7): the bench clinic receiving every kind of traffic at once, in
ONE open-loop schedule at 360 req/s (each request timed from its scheduled send time), the
kinds interleaved evenly in the proportions

- 200/s practitioner search, anonymous (scenario 1's requests: 8 specialties in turn);
- 100/s availability, anonymous (scenario 2's request: the 20-practitioner specialty over 14
  days for the 30-min visit, the window starting on each of the next 7 days in turn);
- 30/s direct bookings as the front desk (scenario 3's request: each a distinct free slot from
  `FreeSlots`, tagged with the run);
- 10/s smart-booking job submissions as the front desk (scenario 6's `POST
  /api/v1/smart-bookings/` bodies; the harness's Celery worker runs the jobs);
- 20/s unit reserves as an integrator (scenario 5's `POST .../lines/<id>/reserve/ {units: 1}`,
  spread over 50 fresh authorization lines large enough that every one is reserved).

Smoke runs cap the total rate (`ctx.rate`); every kind is scaled in proportion. One row per
kind (p50/p95/p99, 5xx, achieved rate; target p99 ≤ 50 ms each) and a total row: the machine's
CPU per request over the run (all processes; the web server's and PostgreSQL's in the server
CPU column) and the answer cache's hit rate during the run (the servers' own per-clinic
counters, `clinic.api.answer_stats`, read before and after). Afterwards: every smart job
reaches a final state within `JOBS_TIMEOUT_S` (none lost), every 201 booking is a booked
appointment in the database, the fresh lines hold exactly the 201 reserves, no overlapping
appointments, the unit ledger consistent, and zero 5xx in every kind.

Direct bookings and smart jobs both book 50-119 days ahead, so a smart job may take a slot a
direct booking of the same run then finds taken: that booking answers 409 (counted as an
error of the booking row, never an invariant).
"""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta

from django.conf import settings

from bench.bench_clinic import (
    FreeSlots,
    bearer,
    bench_ids,
    in_bench,
    ledger_consistent,
    no_overlaps,
)
from bench.harness import BENCH_HOST_SLUG, Check, Context, Row, Target, row_from, scenario
from bench.load import LoadResult, Request
from bench.scenarios.authorization import _fresh_lines, _line_counters, _reserve
from bench.scenarios.availability import availability_requests
from bench.scenarios.booking import booking_requests, latency_written
from bench.scenarios.search import search_requests
from bench.scenarios.smart import FINAL, JobOutcome, job_bodies, jobs_checks, wait_for_idle_worker
from bench.seed import FRONT_DESK_EMAIL, INTEGRATOR_EMAIL

# Requests per second of each kind at full scale, in the order of the rows.
RATES = {"search": 200, "availability": 100, "booking": 30, "smart": 10, "reserve": 20}
TOTAL_RATE = sum(RATES.values())  # 360
OK = {
    "search": (200,),
    "availability": (200,),
    "booking": (201,),
    "smart": (202,),
    "reserve": (201,),
}
LABELS = {
    "search": "search (practitioners, specialty + language)",
    "availability": "availability (20 practitioners x 14 days)",
    "booking": "direct booking (distinct free slots)",
    "smart": "smart-booking job submitted (202)",
    "reserve": "unit reserve (50 fresh lines)",
}
# The answer cache's kind (clinic.api.AnswerCache) of each cached kind of request.
CACHE_KINDS = {"search": "practitioner-search", "availability": "availability"}
TARGET = Target(p99_ms=50)
RESERVE_LINES = 50
JOBS_TIMEOUT_S = 300  # after the run, for every submitted job to reach a final state


def schedule(total: int, rates: dict[str, float] = RATES) -> list[str]:
    """The kind of each of `total` requests: interleaved evenly (request i goes to the kind
    furthest behind its share of the first i + 1), so every kind keeps its proportion of the
    rate over any stretch of the run, and of a short smoke run too."""
    whole = sum(rates.values())
    sent = dict.fromkeys(rates, 0)
    kinds = []
    for i in range(total):
        kind = max(rates, key=lambda k: rates[k] * (i + 1) / whole - sent[k])
        sent[kind] += 1
        kinds.append(kind)
    return kinds


def answer_cache_counts(ctx: Context) -> dict[str, tuple[int, int]] | None:
    """The bench clinic's answer-cache (hits, misses) per kind as the servers count them: their
    hash in Redis (`clinic.api.answer_stats`) under their key prefix, which is this run's, not
    this process's settings'. None when Redis does not answer."""
    from unittest import mock

    from django.conf import settings

    from clinic import api
    from clinic.resilience import RedisUnavailableError

    prefix = ctx.env.get("CACHE_KEY_PREFIX", settings.CACHES["default"].get("KEY_PREFIX", ""))
    try:
        with mock.patch.dict(settings.CACHES["default"], KEY_PREFIX=prefix):
            stats = api.answer_stats()
    except RedisUnavailableError:  # the figure is missing, that is all
        return None
    mine = stats["clinics"].get(BENCH_HOST_SLUG, {})
    return {kind: (row["hits"], row["misses"]) for kind, row in mine.items()}


def hit_rates(
    before: dict[str, tuple[int, int]] | None, after: dict[str, tuple[int, int]] | None
) -> dict[str, dict]:
    """Lookups, hits and hit rate per kind and in all between two readings."""
    if before is None or after is None:
        return {}
    out = {}
    for kind in sorted(after):
        hits = after[kind][0] - before.get(kind, (0, 0))[0]
        misses = after[kind][1] - before.get(kind, (0, 0))[1]
        out[kind] = {"hits": hits, "misses": misses}
    out["all"] = {
        "hits": sum(v["hits"] for v in out.values()),
        "misses": sum(v["misses"] for v in out.values()),
    }
    for row in out.values():
        lookups = row["hits"] + row["misses"]
        row["hit_rate"] = round(row["hits"] / lookups, 4) if lookups else None
    return out


def wait_for_jobs(job_ids: list[str], timeout_s: float) -> tuple[dict[str, str], float]:
    """Until every job is final (or the timeout): ({job id: status}, seconds waited)."""
    from scheduling.models import SmartBookingJob

    started = time.monotonic()
    while True:
        with in_bench():
            jobs = {
                str(pk): status
                for pk, status in SmartBookingJob.objects.filter(pk__in=job_ids).values_list(
                    "pk", "status"
                )
            }
        done = all(jobs.get(i) in FINAL for i in job_ids)
        if done or time.monotonic() - started > timeout_s:
            return jobs, time.monotonic() - started
        time.sleep(0.5)


def reserves_held(lines: list[tuple[int, int]], created: int) -> Check:
    """The fresh lines' counters and reserved ledger rows both equal the 201 reserves."""
    scheduled = ledger = 0
    for _, line in lines:
        _, line_scheduled, line_ledger = _line_counters(line)
        scheduled += line_scheduled
        ledger += line_ledger
    return Check(
        "the fresh lines hold exactly the 201 reserves",
        scheduled == ledger == created,
        f"{created} answers 201, {scheduled} units scheduled, {ledger} ledger rows",
    )


def cpu_note(result: LoadResult) -> tuple[str, dict]:
    """The machine's CPU per request over the run (every process), and this run's share."""
    cpu, rps = result.cpu, result.achieved_rps
    if not cpu or not rps:
        return "", {}
    cores = os.cpu_count() or 1
    per_request = {
        key: round(cpu[key] / 100 * cores / rps * 1000, 3)
        for key in ("machine_busy_pct", "this_run_pct")
        if key in cpu
    }
    note = (
        f"machine CPU {per_request.get('machine_busy_pct')} ms/req "
        f"({cpu.get('machine_busy_pct')}% of {cores} cores; this run's processes "
        f"{per_request.get('this_run_pct')} ms/req, worker and generator included)"
    )
    return note, {"cpu_ms_per_request": per_request}


@scenario(
    "busy",
    title="Busy clinic: search, availability, booking, smart jobs and reserves in one run",
    order=97,  # after the other scenarios; before ceiling_end (the run's drift check)
    smoke=True,
)
def busy(ctx: Context) -> list[Row]:
    from django.utils import timezone

    waited = wait_for_idle_worker(ctx)  # earlier scenarios' queued tasks are not this run's
    ids = bench_ids()
    run = f"bench busy {int(time.time())}"
    rate = ctx.rate(TOTAL_RATE)
    total = max(1, int(rate * ctx.durations.latency_s))  # as the open loop counts them
    kinds = schedule(total)
    count = {kind: kinds.count(kind) for kind in RATES}

    front_desk = bearer(ctx, FRONT_DESK_EMAIL)
    integrator = bearer(ctx, INTEGRATOR_EMAIL)
    service_date = (timezone.localdate() + timedelta(days=7)).isoformat()
    lines = _fresh_lines(RESERVE_LINES, 1_000_000, run.removeprefix("bench ").replace(" ", "-"))
    searches = search_requests(ctx)
    windows = availability_requests(ctx)
    tag = f"{run} booking"
    by_kind: dict[str, list[Request]] = {
        "search": [searches[j % len(searches)] for j in range(count["search"])],
        "availability": [windows[j % len(windows)] for j in range(count["availability"])],
        "booking": booking_requests(
            FreeSlots().take(count["booking"]),
            type_id=ids.visit_type,
            tag=tag,
            headers=front_desk,
        ),
        "smart": [
            Request("/api/v1/smart-bookings/", method="POST", headers=front_desk, body=body)
            for body in job_bodies(count["smart"], start=int(time.time()) % 10_000)
        ],
        "reserve": [
            _reserve(*lines[j % len(lines)], integrator, service_date)
            for j in range(count["reserve"])
        ],
    }
    position = dict.fromkeys(RATES, 0)
    requests = []
    for kind in kinds:
        requests.append(by_kind[kind][position[kind]])
        position[kind] += 1

    booked: dict[int, tuple[int, str]] = {}
    jobs: list[JobOutcome] = []

    def on_response(i: int, request: Request, status: int, body: bytes) -> None:
        if kinds[i] == "booking" and status == 201:
            data = json.loads(body)
            booked[data["id"]] = (data["practitioner"]["id"], request.body["start"])
        elif kinds[i] == "smart":
            if status == 202:
                jobs.append(JobOutcome(job_id=json.loads(body)["job_id"], post_status=status))
            else:
                jobs.append(
                    JobOutcome(
                        post_status=status,
                        error=f"POST {status}: {body[:200].decode(errors='replace')}",
                    )
                )

    before = answer_cache_counts(ctx)
    result = ctx.latency(
        lambda i: requests[i],
        rate=TOTAL_RATE,
        ok_statuses=(200, 201, 202),
        on_response=on_response,
        kind_of=kinds.__getitem__,
    )
    # The servers write their counts a batch at a time (clinic.counting)
    time.sleep(settings.COUNTS_FLUSH_SECONDS + 0.5)
    cache = hit_rates(before, answer_cache_counts(ctx))

    statuses, drained_s = wait_for_jobs([o.job_id for o in jobs if o.job_id], JOBS_TIMEOUT_S)
    finals: dict[str, int] = {}
    for status in statuses.values():
        finals[status] = finals.get(status, 0) + 1

    rows = []
    for kind in RATES:
        if kind not in result.by_kind:
            continue
        mine = result.kind(kind, ok_statuses=OK[kind])
        notes, checks = "", []
        if CACHE_KINDS.get(kind) in cache:
            c = cache[CACHE_KINDS[kind]]
            notes = f"answer cache {c['hits']} hits / {c['misses']} misses ({c['hit_rate']})"
        if kind == "booking":
            checks = [latency_written(tag, booked)]
        elif kind == "smart":
            notes = (
                f"jobs {finals}; all final {drained_s:.1f} s after the run"
                if all(s in FINAL for s in statuses.values())
                else f"jobs {finals} after waiting {drained_s:.0f} s"
            )
            checks = jobs_checks(jobs)
        elif kind == "reserve":
            checks = [reserves_held(lines, int(mine.statuses.get("201", 0)))]
        rows.append(
            row_from(
                "busy", f"busy: {LABELS[kind]}", mine, target=TARGET, checks=checks, notes=notes
            )
        )

    cpu, cpu_data = cpu_note(result)
    all_cache = cache.get("all", {})
    cache_note = (
        f"answer-cache hit rate {all_cache['hit_rate']} ({all_cache['hits']} hits / "
        f"{all_cache['misses']} misses)"
        if all_cache
        else "answer-cache statistics unavailable (Redis did not answer)"
    )
    fives = {kind: result.kind(kind).server_errors for kind in RATES if kind in result.by_kind}
    offered = ", ".join(
        f"{kind} {result.by_kind[kind]['offered_rps']:g}/s"
        for kind in RATES
        if kind in result.by_kind
    )
    total_row = row_from(
        "busy",
        "busy: all kinds together",
        result,
        checks=[
            Check(
                "zero 5xx in every kind",
                not any(fives.values()),
                ", ".join(f"{k} {n}" for k, n in fives.items()),
            ),
            no_overlaps(),
            *ledger_consistent(),
        ],
        notes="; ".join(
            filter(
                None,
                [
                    cpu,
                    cache_note,
                    offered,
                    f"waited {waited:.0f} s for the queue to drain first" if waited > 1 else "",
                ],
            )
        ),
    )
    total_row.data.update(cpu_data, answer_cache=cache, smart_jobs=finals)
    return [*rows, total_row]

"""What a scenario is given and what it hands back.

A scenario is a function `(ctx: Context) -> list[Row]`, registered with `@scenario(...)` in a
module of `bench/scenarios/`. It builds its requests (Python `Request`s: any URL, method, body,
headers), measures with `ctx.capacity(...)` (closed loop, wrk) and/or `ctx.latency(...)` (open
loop, timed from the scheduled send time), checks the database afterwards (`ctx.sql(...)`,
`Check`), and returns one `Row` per figure. The run prints the rows as a table and writes them
to the results JSON.

Invariants (`Check`s, 5xx answers, transport errors, an exception in the scenario) fail the run
(`make bench-smoke` exits non-zero); targets on figures never do: they show pass / FAIL.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.load import (
    KindOf,
    LoadResult,
    Request,
    RequestSource,
    ResponseHook,
    capacity,
    closed_loop_python,
    open_loop,
    wrk_available,
)
from bench.servers import CpuMeter, FsyncProbe, Service, Stack, checkpoint, granian

BENCH_HOST_SLUG = "bench"
# A measurement during which processes outside this run used this much of the machine (other
# engineers' tests share it) says so in its notes.
OTHERS_NOTE_PCT = 10
# An open-loop run whose generator fell this far behind its schedule says so.
LAG_NOTE_MS = 10


@dataclass
class Check:
    """An invariant checked after a scenario (usually in the database)."""

    name: str
    ok: bool | None  # None: not applicable yet (skipped), never a failure
    detail: str = ""


@dataclass
class Target:
    """A target on figures; any field left None is not checked."""

    p95_ms: float | None = None
    p99_ms: float | None = None
    ratio_min: float | None = None
    cached_ratio_min: float | None = None  # × the host-cached ceiling (`row_from`'s)
    text: str | None = None

    def describe(self) -> str:
        if self.text:
            return self.text
        parts = []
        if self.p95_ms is not None:
            parts.append(f"p95 ≤ {self.p95_ms:g} ms")
        if self.p99_ms is not None:
            parts.append(f"p99 ≤ {self.p99_ms:g} ms")
        if self.ratio_min is not None:
            parts.append(f"≥ {self.ratio_min:g} × ceiling")
        if self.cached_ratio_min is not None:
            parts.append(f"≥ {self.cached_ratio_min:g} × cached ceiling")
        return ", ".join(parts)


@dataclass
class Row:
    scenario: str
    label: str
    offered: str = "—"
    achieved_rps: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    errors: int | None = None
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    server_errors: int = 0
    transport_errors: int = 0
    ratio: float | None = None
    ratio_cached: float | None = None  # × the ceiling with the host cache on (context)
    # CPU of the web server and its PostgreSQL backends per answer: steadier than requests/s
    # when other processes share the machine.
    server_cpu_ms: float | None = None
    target: str = ""
    passed: bool | None = None  # the target on figures; None when there is none
    checks: list[Check] = field(default_factory=list)
    notes: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def broken(self) -> list[str]:
        """Broken invariants: any 5xx, a transport error, a failed check."""
        out = []
        if self.server_errors:
            out.append(f"{self.server_errors} answers 5xx")
        if self.transport_errors:
            out.append(f"{self.transport_errors} transport errors")
        out += [f"{c.name}: {c.detail}" for c in self.checks if c.ok is False]
        return out

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["checks"] = [c.__dict__ for c in self.checks]
        data["broken"] = self.broken
        return data


def row_from(
    scenario: str,
    label: str,
    result: LoadResult,
    *,
    target: Target | None = None,
    ceiling_rps: float | None = None,
    ceiling_cached_rps: float | None = None,
    checks: Sequence[Check] = (),
    notes: str = "",
) -> Row:
    """A table row from a load result, with the target evaluated (a ratio to the host-cached
    ceiling needs `ceiling_cached_rps`; the run fills that column of the other rows)."""
    ratio = ratio_cached = None  # judged unrounded: 0.1496 is not 0.15
    if result.mode == "capacity" and ceiling_rps:
        ratio = result.achieved_rps / ceiling_rps
    if result.mode == "capacity" and ceiling_cached_rps:
        ratio_cached = result.achieved_rps / ceiling_cached_rps
    busy = result.cpu.get("others_pct", 0)
    if busy >= OTHERS_NOTE_PCT:
        notes = "; ".join(filter(None, [notes, f"other processes used {busy:g}% of the machine"]))
    stalls = (result.disk_fsync or {}).get(f"over_{FsyncProbe.STALL_MS}_ms")
    if stalls:
        disk = result.disk_fsync
        notes = "; ".join(filter(None, [notes, (
            f"disk flushes ({disk['where']}): {stalls} of {disk['samples']} over "
            f"{FsyncProbe.STALL_MS} ms, longest {disk['max_ms']:g} ms"
        )]))  # fmt: skip
    lag = result.max_dispatch_lag_ms or 0
    if lag >= LAG_NOTE_MS:
        # Still timed from the schedule, so the lag is in the figures, not hidden.
        notes = "; ".join(filter(None, [notes, f"the generator sent up to {lag:g} ms late"]))
    offered = (
        f"closed, {result.connections} conns"
        if result.mode == "capacity"
        else f"{result.offered_rps:g} req/s"
    )
    passed = None
    if target is not None:
        verdicts = []
        if target.p95_ms is not None:
            verdicts.append(result.p95_ms is not None and result.p95_ms <= target.p95_ms)
        if target.p99_ms is not None:
            verdicts.append(result.p99_ms is not None and result.p99_ms <= target.p99_ms)
        if target.ratio_min is not None:
            verdicts.append(ratio is not None and ratio >= target.ratio_min)
        if target.cached_ratio_min is not None:
            verdicts.append(ratio_cached is not None and ratio_cached >= target.cached_ratio_min)
        passed = all(verdicts) if verdicts else None
    server_cpu_ms = None
    by_process = result.cpu.get("by_process_pct", {})
    if by_process and result.achieved_rps:
        server_pct = sum(v for k, v in by_process.items() if k.startswith(("web", "postgres")))
        cores = os.cpu_count() or 1
        server_cpu_ms = round(server_pct / 100 * cores / result.achieved_rps * 1000, 3)
    return Row(
        scenario=scenario,
        label=label,
        offered=offered,
        server_cpu_ms=server_cpu_ms,
        achieved_rps=result.achieved_rps,
        p50_ms=result.p50_ms,
        p95_ms=result.p95_ms,
        p99_ms=result.p99_ms,
        max_ms=result.max_ms,
        errors=result.errors,
        errors_by_kind=result.errors_by_kind(),
        server_errors=result.server_errors,
        transport_errors=sum(result.transport_errors.values()),
        ratio=None if ratio is None else round(ratio, 4),
        ratio_cached=None if ratio_cached is None else round(ratio_cached, 4),
        target=target.describe() if target else "",
        passed=passed,
        checks=list(checks),
        notes=notes,
        data={"load": result.to_dict()},
    )


@dataclass(frozen=True)
class Scenario:
    name: str
    func: Callable[[Context], list[Row]]
    title: str
    order: int
    needs_ceiling: bool
    smoke: bool  # part of `make bench-smoke`
    default: bool  # part of `make bench`


SCENARIOS: dict[str, Scenario] = {}
LOAD_MIXES: dict[str, Callable[[Context], list[Request]]] = {}


def scenario(
    name: str,
    *,
    title: str,
    order: int,
    needs_ceiling: bool = False,
    smoke: bool = False,
    default: bool = True,
):
    """Register a scenario. `order` sorts the run (ceilings first, long ones last);
    `needs_ceiling` makes `--only` add the ceiling so ratios can be computed."""

    def register(func: Callable[[Context], list[Row]]):
        SCENARIOS[name] = Scenario(name, func, title, order, needs_ceiling, smoke, default)
        return func

    return register


def load_mix(name: str):
    """Register requests that the memory scenario mixes into its load (one list per
    capability, so the memory figure covers every endpoint that has landed)."""

    def register(func: Callable[[Context], list[Request]]):
        LOAD_MIXES[name] = func
        return func

    return register


@dataclass
class Durations:
    capacity_s: float
    latency_s: float
    memory_s: float
    warmup_s: float
    # Open-loop rates are capped here (smoke runs send "a few requests", not 200/s).
    max_rate: float | None = None


FULL = Durations(capacity_s=30, latency_s=60, memory_s=60, warmup_s=2)
QUICK = Durations(capacity_s=10, latency_s=15, memory_s=15, warmup_s=1)
SMOKE = Durations(capacity_s=2, latency_s=2, memory_s=3, warmup_s=0, max_rate=20)


@dataclass
class Context:
    """Everything a scenario needs: the running web server, the data set's hosts, durations,
    the database (Django is set up against the bench database), and a way to start more
    servers with the identical configuration."""

    mode: str  # "full", "quick" or "smoke"
    durations: Durations
    stack: Stack
    web: Service
    env: dict[str, str]  # the environment every server of this run got
    log_dir: Path
    results_dir: Path
    base_domain: str
    ports: dict[str, int]
    database_url: str
    options: dict[str, Any] = field(default_factory=dict)  # e.g. {"clinics": 1000}
    ceiling_rps: float | None = None  # issue 9's ceiling: one domain query (the ratios' base)
    ceiling_cached_rps: float | None = None  # the same view with the host cache on
    rss_at_start: dict[int, dict[str, int]] = field(default_factory=dict)
    # pids of the PostgreSQL backends serving this run's databases (CPU accounting).
    pg_backends: Callable[[], list[int]] | None = None
    pg_data: Path | None = None  # PostgreSQL's data directory, if on this machine and readable

    @property
    def smoke(self) -> bool:
        return self.mode == "smoke"

    def host(self, slug: str = BENCH_HOST_SLUG) -> str:
        return f"{slug}.{self.base_domain}"

    def rate(self, rate: float) -> float:
        return min(rate, self.durations.max_rate) if self.durations.max_rate else rate

    def capacity(
        self,
        requests: Sequence[Request],
        *,
        host: str | None = None,
        server: Service | None = None,
        ok_statuses: tuple[int, ...] = (),
        warmup_requests: Sequence[Request] | None = None,
        connections: int = 50,
        duration_s: float | None = None,
    ) -> LoadResult:
        """Closed loop at 50 connections for the run's capacity duration (wrk)."""
        server = server or self.web
        host = host or self.host()
        warm = self.durations.warmup_s
        # Smoke runs check invariants, not figures: without wrk they use a Python closed loop.
        closed_loop = capacity if wrk_available() or not self.smoke else closed_loop_python
        if warm and (warmup_requests is None or warmup_requests):
            closed_loop(
                server.base_url,
                warmup_requests or requests,
                host=host,
                connections=connections,
                duration_s=warm,
            )
        with CpuMeter(self.stack, self.pg_backends) as meter:
            result = closed_loop(
                server.base_url,
                requests,
                host=host,
                connections=connections,
                duration_s=duration_s or self.durations.capacity_s,
                ok_statuses=ok_statuses,
            )
        result.cpu = meter.result
        return result

    def latency(
        self,
        make_request: RequestSource,
        *,
        rate: float,
        host: str | None = None,
        server: Service | None = None,
        ok_statuses: tuple[int, ...] = (),
        on_response: ResponseHook | None = None,
        duration_s: float | None = None,
        kind_of: KindOf | None = None,
    ) -> LoadResult:
        """Open loop at `rate` (capped in smoke runs) for the run's latency duration; with
        `kind_of`, figures per kind too (`LoadResult.kind(name)`).

        It starts with a CHECKPOINT, so the dirty pages of what ran before (a capacity run
        writes thousands of rows a second) are written now, not during the measurement by the
        spread-out timed checkpoint, whose writes delayed the WAL flushes every COMMIT waits
        for by 50-450 ms on this machine's disk. The disk's flush time is sampled throughout
        (`FsyncProbe`) and reported beside the figures."""
        server = server or self.web
        checkpoint()
        with CpuMeter(self.stack, self.pg_backends) as meter, FsyncProbe(self.pg_data) as disk:
            result = open_loop(
                server.base_url,
                make_request,
                host=host or self.host(),
                rate=self.rate(rate),
                duration_s=duration_s or self.durations.latency_s,
                ok_statuses=ok_statuses,
                on_response=on_response,
                kind_of=kind_of,
            )
        result.cpu = meter.result
        result.disk_fsync = disk.result
        return result

    def start_web(
        self,
        name: str,
        *,
        port: int,
        env: dict[str, str] | None = None,
        settings_module: str | None = None,
        ready_path: str = "/health/",
        cwd: Path | None = None,
    ) -> Service:
        """Another granian with the identical flags (e.g. other settings or database, or the
        source tree of another commit in `cwd`); stop it with `ctx.stack.stop(service)` (the
        run stops it anyway at the end)."""
        service = granian(
            name=name,
            port=port,
            env={**self.env, **(env or {})},
            log_dir=self.log_dir,
            ready_host=self.host(),
            ready_path=ready_path,
            settings_module=settings_module,
            **({"cwd": cwd} if cwd else {}),
        )
        self.stack.start(service)
        return service

    def start_web_uncached(self) -> Service:
        """A second granian, identical but with the shared answer cache off
        (`ANSWER_CACHE_SECONDS=0`): every answer computed, as on a cache miss."""
        return self.start_web(
            "web-uncached", port=self.ports["extra"], env={"ANSWER_CACHE_SECONDS": "0"}
        )

    def sql(self, query: str, params: Sequence[Any] = (), *, schema: str | None = None):
        """Rows of `query` run in `schema` (default: the bench clinic's)."""
        from django.db import connection
        from django_tenants.utils import schema_context

        with schema_context(schema or BENCH_HOST_SLUG), connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall() if cursor.description else []


def timed(func: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    value = func()
    return value, time.perf_counter() - started

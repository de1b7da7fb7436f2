"""The two load generators of the benchmarks.

*Capacity* (closed loop): `capacity()` drives `wrk` (C, event loop, Debian package `wrk`) with a
fixed number of connections for a fixed time and reports requests/s. The requests come from
Python as a list of `Request`s, rendered into a Lua script, so wrk can send distinct URLs,
methods, headers and bodies (e.g. one free slot per booking) at full speed; statuses are counted
per code by the script.

*Latency* (open loop): `open_loop()` sends request *i* at `start + i / rate`, whether or not the
earlier ones have been answered, and times each one from that *scheduled* time. A server that
stalls for a second therefore shows a second of latency on every request that should have been
sent during the stall, instead of quietly sending fewer (coordinated omission). It is a small
HTTP/1.1 client on raw asyncio streams with keep-alive connections, because at 200 requests/s
on a 2-core machine that also runs the server, a full client library (httpx) spends several
times more CPU per request than the server's own work we want to measure.

Both run on the same machine as the server; every figure they print says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import heapq
import json
import math
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from urllib.parse import urlsplit

SAME_MACHINE = "load generator and server on the same machine"


@dataclass(frozen=True)
class Request:
    """One HTTP request. `host` is the Host header (the clinic); the TCP target is the server's
    address given to the generator."""

    path: str
    method: str = "GET"
    host: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | str | dict | list | None = None

    def encode(self, default_host: str) -> bytes:
        body = self.body
        headers = {k.lower(): v for k, v in self.headers.items()}
        if isinstance(body, dict | list):
            body = json.dumps(body).encode()
            headers.setdefault("content-type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {self.host or default_host}"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k != "host"]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        elif self.method in ("POST", "PUT", "PATCH"):
            lines.append("Content-Length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class LoadResult:
    """What either generator measured. Latencies in milliseconds."""

    mode: str  # "capacity" (closed loop, wrk) or "latency" (open loop)
    generator: str
    duration_s: float
    requests: int  # answered with any HTTP status
    achieved_rps: float
    statuses: dict[str, int]
    transport_errors: dict[str, int]
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    offered_rps: float | None = None  # open loop only
    connections: int | None = None  # closed loop only
    scheduled: int | None = None  # open loop: requests that were due
    max_dispatch_lag_ms: float | None = None  # open loop: how late the generator itself sent
    ok_statuses: tuple[int, ...] = ()
    # open loop: the slowest answers as (seconds into the run they were due, ms), to tell
    # periodic stalls (a checkpoint, a scheduled task) from steady queueing
    slowest: list[tuple[float, float]] = field(default_factory=list)
    # open loop: the generator's own garbage-collector passes during the run (a pass stalls
    # sending and reading alike, so it shows as server latency): count, longest and total ms
    generator_gc: dict[str, float] = field(default_factory=dict)
    # open loop: the disk's flush times during the run (bench.servers.FsyncProbe)
    disk_fsync: dict[str, object] = field(default_factory=dict)
    note: str = SAME_MACHINE
    # Filled by the harness: machine CPU during the measurement (bench.servers.CpuMeter).
    cpu: dict[str, float] = field(default_factory=dict)
    # open loop with `kind_of`: each kind's own figures (scheduled, requests, achieved_rps,
    # offered_rps, statuses, transport_errors, p50/p95/p99/max_ms); `kind()` makes a result
    by_kind: dict[str, dict] = field(default_factory=dict)

    def status_count(self, predicate: Callable[[int], bool]) -> int:
        return sum(n for code, n in self.statuses.items() if predicate(int(code)))

    @property
    def server_errors(self) -> int:
        return self.status_count(lambda code: code >= 500)

    @property
    def errors(self) -> int:
        """Answers outside ok_statuses (default: 2xx and 3xx) plus transport errors."""
        ok = set(self.ok_statuses)
        bad = self.status_count(lambda code: code not in ok if ok else not 200 <= code < 400)
        return bad + sum(self.transport_errors.values())

    def errors_by_kind(self) -> dict[str, int]:
        ok = set(self.ok_statuses)
        out = {
            code: n
            for code, n in sorted(self.statuses.items())
            if (int(code) not in ok if ok else not 200 <= int(code) < 400)
        }
        out.update(self.transport_errors)
        return out

    def to_dict(self) -> dict:
        data = dict(self.__dict__)
        data["ok_statuses"] = list(self.ok_statuses)
        data["errors"] = self.errors
        data["server_errors"] = self.server_errors
        return data

    def kind(self, name: str, *, ok_statuses: tuple[int, ...] | None = None) -> LoadResult:
        """One kind's figures (an open loop run with `kind_of`) as a result of its own, e.g.
        for `row_from`. Machine CPU is not split by kind: the kind's result has none."""
        figures = self.by_kind[name]
        return LoadResult(
            mode=self.mode,
            generator=self.generator,
            duration_s=self.duration_s,
            requests=figures["requests"],
            achieved_rps=figures["achieved_rps"],
            statuses=dict(figures["statuses"]),
            transport_errors=dict(figures["transport_errors"]),
            p50_ms=figures["p50_ms"],
            p95_ms=figures["p95_ms"],
            p99_ms=figures["p99_ms"],
            max_ms=figures["max_ms"],
            offered_rps=figures["offered_rps"],
            scheduled=figures["scheduled"],
            max_dispatch_lag_ms=self.max_dispatch_lag_ms,
            ok_statuses=self.ok_statuses if ok_statuses is None else ok_statuses,
            note=self.note,
        )


# --------------------------------------------------------------------------------------------
# Capacity: wrk
# --------------------------------------------------------------------------------------------


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk_binary() -> str:
    path = shutil.which("wrk")
    if not path:
        raise RuntimeError(
            "wrk is not installed: `apt-get install wrk` (Debian package) — it is the "
            "closed-loop load generator of the capacity measurements (bench/README.md)."
        )
    return path


def _lua_string(data: bytes) -> str:
    out = []
    for byte in data:
        char = chr(byte)
        if char in '\\"':
            out.append("\\" + char)
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append(f"\\{byte}")
    return '"' + "".join(out) + '"'


_WRK_SCRIPT = """
-- Generated by bench/load.py: cycles through a fixed list of raw requests; thread i of n sends
-- requests i, i+n, i+2n, ... so that no two threads send the same one; counts statuses.
local reqs = {%(requests)s}
local threads = {}
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end
function init(args)
  nthreads = %(threads)d
  pos = tid
  statuses = {}
end
function request()
  local r = reqs[(pos %% #reqs) + 1]
  pos = pos + nthreads
  return r
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local parts = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for code, n in pairs(s) do
      table.insert(parts, string.format('"%%d": %%d', code, n))
    end
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"duration_us": %%d, "requests": %%d, "connect": %%d, "read": %%d, ' ..
    '"write": %%d, "timeout": %%d, "p50": %%d, "p95": %%d, "p99": %%d, "max": %%d, ' ..
    '"statuses": [{%%s}]}\\n',
    summary.duration, summary.requests, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    table.concat(parts, "}, {")))
end
"""


def capacity(
    base_url: str,
    requests: Sequence[Request],
    *,
    host: str,
    connections: int = 50,
    duration_s: float = 30,
    threads: int = 2,
    timeout_s: float = 10,
    ok_statuses: tuple[int, ...] = (),
) -> LoadResult:
    """Closed loop: `connections` connections each send the next request as soon as the last
    one is answered, for `duration_s`; requests are taken in order from `requests` (cycled)."""
    if not requests:
        raise ValueError("capacity() needs at least one request")
    threads = max(1, min(threads, connections))
    body = ",\n".join(_lua_string(r.encode(host)) for r in requests)
    script = _WRK_SCRIPT % {"requests": body, "threads": threads}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
        script_path = handle.name
    try:
        argv = [
            wrk_binary(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration_s))}s",
            f"--timeout={max(1, round(timeout_s))}s",
            "-s",
            script_path,
            base_url,
        ]
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=duration_s + timeout_s + 60
        )
    finally:
        Path(script_path).unlink(missing_ok=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}")
    data = json.loads(line.removeprefix("WRKJSON "))
    statuses: Counter[str] = Counter()
    for part in data["statuses"]:
        for code, n in part.items():
            statuses[code] += n
    duration = data["duration_us"] / 1e6
    transport = {kind: data[kind] for kind in ("connect", "read", "write", "timeout") if data[kind]}
    return LoadResult(
        mode="capacity",
        generator=f"wrk -t{threads} -c{connections} (closed loop)",
        duration_s=round(duration, 2),
        requests=data["requests"],
        achieved_rps=round(data["requests"] / duration, 1) if duration else 0.0,
        statuses=dict(sorted(statuses.items())),
        transport_errors=transport,
        p50_ms=data["p50"] / 1000,
        p95_ms=data["p95"] / 1000,
        p99_ms=data["p99"] / 1000,
        max_ms=data["max"] / 1000,
        connections=connections,
        ok_statuses=ok_statuses,
    )


# --------------------------------------------------------------------------------------------
# Latency: open loop on raw asyncio streams
# --------------------------------------------------------------------------------------------


class _ConnectionClosed(Exception):
    pass


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, keep_alive) of one HTTP/1.1 response."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        raise _ConnectionClosed from exc
    lines = head.decode("latin-1").split("\r\n")
    version, status = lines[0].split(" ", 2)[:2]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(chunks)
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif int(status) in (204, 304) or 100 <= int(status) < 200:
        body = b""
    else:
        body = await reader.read()
        keep_alive = False
    return int(status), body, keep_alive


class _Pool:
    def __init__(self, host: str, port: int, limit: int):
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(limit)
        self.opened = 0

    async def exchange(self, payload: bytes, timeout: float) -> tuple[int, bytes]:
        async with self.slots:
            for attempt in (0, 1):
                # A retry never reuses: the server may have closed several idle connections.
                reused = bool(self.idle) and attempt == 0
                if reused:
                    reader, writer = self.idle.pop()
                else:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(self.host, self.port), timeout
                    )
                    self.opened += 1
                try:
                    writer.write(payload)
                    status, body, keep_alive = await asyncio.wait_for(
                        _read_response(reader), timeout
                    )
                except (_ConnectionClosed, ConnectionResetError, BrokenPipeError):
                    writer.close()
                    if reused and attempt == 0:
                        continue  # the server closed an idle keep-alive connection: retry once
                    raise
                except BaseException:
                    writer.close()
                    raise
                if keep_alive:
                    self.idle.append((reader, writer))
                else:
                    writer.close()
                return status, body
            raise _ConnectionClosed

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


class _GcPauses:
    """Times this process's garbage-collector passes while in the block (gc.callbacks)."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((time.perf_counter() - self._started) * 1000)

    def __enter__(self) -> _GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def summary(self) -> dict[str, float]:
        return {
            "passes": len(self.pauses),
            "longest_ms": round(max(self.pauses, default=0.0), 2),
            "total_ms": round(sum(self.pauses), 2),
        }


@dataclass
class _KindTally:
    """One kind's share of an open-loop run (`open_loop(kind_of=...)`)."""

    scheduled: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    transport: Counter[str] = field(default_factory=Counter)

    def figures(self, elapsed: float, offered_rps: float) -> dict:
        self.latencies.sort()
        answered = sum(self.statuses.values())
        return {
            "scheduled": self.scheduled,
            "requests": answered,
            "achieved_rps": round(answered / elapsed, 1),
            "offered_rps": round(offered_rps, 2),
            "statuses": dict(sorted(self.statuses.items())),
            "transport_errors": dict(self.transport),
            "p50_ms": _round(percentile(self.latencies, 50)),
            "p95_ms": _round(percentile(self.latencies, 95)),
            "p99_ms": _round(percentile(self.latencies, 99)),
            "max_ms": _round(self.latencies[-1] if self.latencies else None),
        }


RequestSource = Callable[[int], Request]
ResponseHook = Callable[[int, Request, int, bytes], None]
KindOf = Callable[[int], str]  # request i's kind (e.g. "search"), for figures per kind


async def _open_loop(
    base_url: str,
    make_request: RequestSource,
    *,
    host: str,
    rate: float,
    duration_s: float,
    timeout_s: float,
    max_connections: int,
    on_response: ResponseHook | None,
    ok_statuses: tuple[int, ...],
    warmup: int,
    kind_of: KindOf | None = None,
) -> LoadResult:
    target = urlsplit(base_url)
    pool = _Pool(target.hostname or "127.0.0.1", target.port or 80, max_connections)
    total = max(1, int(rate * duration_s))
    latencies: list[float] = []
    due: list[tuple[float, float]] = []  # (due at, ms)
    statuses: Counter[str] = Counter()
    transport: Counter[str] = Counter()
    finished_at = [0.0]
    kinds: dict[str, _KindTally] = {}  # only with kind_of

    async def one(i: int, request: Request, scheduled: float) -> None:
        payload = request.encode(host)
        mine = kinds[kind_of(i)] if kind_of is not None else None
        try:
            status, body = await pool.exchange(payload, timeout_s)
        except TimeoutError:
            transport["timeout"] += 1
            latencies.append((time.perf_counter() - scheduled) * 1000)
            if mine is not None:
                mine.transport["timeout"] += 1
                mine.latencies.append(latencies[-1])
            return
        except (OSError, _ConnectionClosed, asyncio.IncompleteReadError, ValueError) as exc:
            transport[f"connection ({type(exc).__name__})"] += 1
            if mine is not None:
                mine.transport[f"connection ({type(exc).__name__})"] += 1
            return
        now = time.perf_counter()
        latencies.append((now - scheduled) * 1000)
        due.append((scheduled - start, latencies[-1]))
        statuses[str(status)] += 1
        if mine is not None:
            mine.latencies.append(latencies[-1])
            mine.statuses[str(status)] += 1
        finished_at[0] = max(finished_at[0], now)
        if on_response is not None:
            on_response(i, request, status, body)

    # Warm-up: open a few connections (not timed) so the first scheduled requests do not all
    # pay a TCP handshake the steady state never pays.
    for _ in range(warmup):
        with contextlib.suppress(OSError):
            pool.idle.append(await asyncio.open_connection(pool.host, pool.port))
            pool.opened += 1

    tasks = []
    max_lag = 0.0
    start = time.perf_counter() + 0.05
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        max_lag = max(max_lag, time.perf_counter() - scheduled)
        if kind_of is not None:
            kinds.setdefault(kind_of(i), _KindTally()).scheduled += 1
        tasks.append(asyncio.create_task(one(i, make_request(i), scheduled)))
    await asyncio.gather(*tasks)
    pool.close()
    end = finished_at[0] or time.perf_counter()
    elapsed = max(end - start, 1e-9)
    latencies.sort()
    answered = sum(statuses.values())
    by_kind = {name: t.figures(elapsed, rate * t.scheduled / total) for name, t in kinds.items()}
    return LoadResult(
        mode="latency",
        generator="bench/load.py open loop (asyncio streams, HTTP/1.1 keep-alive)",
        duration_s=round(elapsed, 2),
        requests=answered,
        achieved_rps=round(answered / elapsed, 1),
        statuses=dict(sorted(statuses.items())),
        transport_errors=dict(transport),
        p50_ms=_round(percentile(latencies, 50)),
        p95_ms=_round(percentile(latencies, 95)),
        p99_ms=_round(percentile(latencies, 99)),
        max_ms=_round(latencies[-1] if latencies else None),
        offered_rps=rate,
        scheduled=total,
        max_dispatch_lag_ms=round(max_lag * 1000, 2),
        ok_statuses=ok_statuses,
        slowest=sorted(
            (round(at, 2), round(ms, 1)) for at, ms in heapq.nlargest(20, due, key=itemgetter(1))
        ),
        by_kind=by_kind,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


async def _closed_loop(
    base_url: str,
    requests: Sequence[Request],
    *,
    host: str,
    connections: int,
    duration_s: float,
    timeout_s: float,
    ok_statuses: tuple[int, ...],
) -> LoadResult:
    target = urlsplit(base_url)
    pool = _Pool(target.hostname or "127.0.0.1", target.port or 80, connections)
    payloads = [r.encode(host) for r in requests]
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    transport: Counter[str] = Counter()
    counter = [0]
    start = time.perf_counter()
    deadline = start + duration_s

    async def worker() -> None:
        while time.perf_counter() < deadline:
            payload = payloads[counter[0] % len(payloads)]
            counter[0] += 1
            sent = time.perf_counter()
            try:
                status, _ = await pool.exchange(payload, timeout_s)
            except TimeoutError:
                transport["timeout"] += 1
                continue
            except (OSError, _ConnectionClosed, asyncio.IncompleteReadError, ValueError) as exc:
                transport[f"connection ({type(exc).__name__})"] += 1
                await asyncio.sleep(0.01)
                continue
            latencies.append((time.perf_counter() - sent) * 1000)
            statuses[str(status)] += 1

    await asyncio.gather(*(worker() for _ in range(connections)))
    pool.close()
    elapsed = time.perf_counter() - start
    latencies.sort()
    answered = sum(statuses.values())
    return LoadResult(
        mode="capacity",
        generator=f"bench/load.py closed loop, {connections} connections (wrk not installed)",
        duration_s=round(elapsed, 2),
        requests=answered,
        achieved_rps=round(answered / elapsed, 1),
        statuses=dict(sorted(statuses.items())),
        transport_errors=dict(transport),
        p50_ms=_round(percentile(latencies, 50)),
        p95_ms=_round(percentile(latencies, 95)),
        p99_ms=_round(percentile(latencies, 99)),
        max_ms=_round(latencies[-1] if latencies else None),
        connections=connections,
        ok_statuses=ok_statuses,
    )


def closed_loop_python(
    base_url: str,
    requests: Sequence[Request],
    *,
    host: str,
    connections: int = 50,
    duration_s: float = 30,
    timeout_s: float = 10,
    ok_statuses: tuple[int, ...] = (),
) -> LoadResult:
    """A closed loop in Python, for machines without wrk. Its own CPU use competes with the
    server's, so its requests/s understate capacity: smoke runs (invariants only) use it when
    wrk is missing; measured runs require wrk."""
    return asyncio.run(
        _closed_loop(
            base_url,
            requests,
            host=host,
            connections=connections,
            duration_s=duration_s,
            timeout_s=timeout_s,
            ok_statuses=ok_statuses,
        )
    )


def open_loop(
    base_url: str,
    make_request: RequestSource,
    *,
    host: str,
    rate: float,
    duration_s: float = 60,
    timeout_s: float = 10,
    max_connections: int = 256,
    on_response: ResponseHook | None = None,
    ok_statuses: tuple[int, ...] = (),
    warmup: int = 4,
    kind_of: KindOf | None = None,
) -> LoadResult:
    """Open loop: `rate` requests/s for `duration_s`; request i is `make_request(i)`, sent at
    its scheduled time and timed from it. `on_response(i, request, status, body)` sees every
    answer (to collect ids for a later check). At most `max_connections` are open; a request
    that waits for one is still timed from its scheduled time. With `kind_of(i)` (request i's
    kind: several kinds interleaved in one schedule) the result also holds each kind's own
    figures (`LoadResult.by_kind`, `LoadResult.kind(name)`).

    The harness's own objects (Django, the request lists: hundreds of thousands) are frozen
    out of the garbage collector for the run: a full pass over them paused this process for
    40-60 ms, which showed as server latency."""
    gc.collect()
    gc.freeze()
    try:
        with _GcPauses() as pauses:
            result = asyncio.run(
                _open_loop(
                    base_url,
                    make_request,
                    host=host,
                    rate=rate,
                    duration_s=duration_s,
                    timeout_s=timeout_s,
                    max_connections=max_connections,
                    on_response=on_response,
                    ok_statuses=ok_statuses,
                    warmup=warmup,
                    kind_of=kind_of,
                )
            )
    finally:
        gc.unfreeze()
    result.generator_gc = pauses.summary()
    return result

"""The benchmarks' load generators (bench/load.py) against a tiny local HTTP server: statuses and
errors are counted, and open-loop latency is timed from the scheduled send time, so a server
stall shows on every request that was due during it (no coordinated omission)."""

import asyncio
import json
import threading
import time
from collections import Counter

import pytest

from bench.load import Request, capacity, closed_loop_python, open_loop, percentile


class TinyServer:
    """HTTP/1.1 keep-alive server on a thread. `/status/<n>` answers n; `/stall` holds every
    connection for 0.5 s once; `/chunked` answers chunked; `/close` closes after answering;
    `/hang` never answers."""

    def __init__(self):
        self.paths: Counter[str] = Counter()
        self.stall_until = 0.0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(5)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def _handle(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                path = lines[0].split(" ")[1]
                length = next(
                    (
                        int(line.split(":")[1])
                        for line in lines
                        if line.lower().startswith("content-length")
                    ),
                    0,
                )
                if length:
                    await reader.readexactly(length)
                self.paths[path] += 1
                if path == "/stall" and not self.stall_until:
                    self.stall_until = time.monotonic() + 0.5
                wait = self.stall_until - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if path == "/hang":
                    await asyncio.sleep(30)
                status = (
                    int(path.split("/")[2].split("?")[0]) if path.startswith("/status/") else 200
                )
                body = json.dumps({"path": path}).encode()
                if path == "/chunked":
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + f"{len(body):x}\r\n".encode()
                        + body
                        + b"\r\n0\r\n\r\n"
                    )
                else:
                    extra = b"Connection: close\r\n" if path == "/close" else b""
                    writer.write(
                        f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n".encode()
                        + extra
                        + b"\r\n"
                        + body
                    )
                await writer.drain()
                if path == "/close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _shutdown(self):
        self.server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self):
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def server():
    s = TinyServer()
    yield s
    s.stop()


def test_request_encodes_json_body_with_length_and_host():
    raw = Request("/api/x/", method="POST", body={"a": 1}, headers={"X-Y": "z"}).encode("h.test")
    head, body = raw.split(b"\r\n\r\n")
    assert head.startswith(b"POST /api/x/ HTTP/1.1\r\nHost: h.test\r\n")
    assert b"content-type: application/json" in head
    assert b"Content-Length: 8" in head
    assert json.loads(body) == {"a": 1}


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([], 50) is None


def test_open_loop_counts_statuses_and_server_errors(server):
    paths = ["/status/200", "/status/404", "/status/500", "/chunked", "/close"]
    result = open_loop(
        server.url, lambda i: Request(paths[i % 5]), host="t", rate=100, duration_s=0.5
    )
    assert result.scheduled == 50
    assert result.statuses == {"200": 30, "404": 10, "500": 10}
    assert result.server_errors == 10
    assert result.errors == 20
    assert result.errors_by_kind() == {"404": 10, "500": 10}
    assert result.transport_errors == {}
    assert result.achieved_rps > 50


def test_open_loop_times_from_the_scheduled_send_time(server):
    """The server stalls 0.5 s at the 5th request; every request due during the stall must
    show it, not only the one in flight (which is all a closed loop would show)."""
    result = open_loop(
        server.url,
        lambda i: Request("/stall" if i == 4 else "/status/200"),
        host="t",
        rate=50,
        duration_s=1.5,
    )
    assert result.statuses == {"200": 75}
    assert result.max_ms >= 450
    assert result.p50_ms < 100
    assert result.p95_ms >= 200  # ~25 of 75 requests were due during the stall


def test_open_loop_reports_timeouts_as_transport_errors(server):
    result = open_loop(
        server.url,
        lambda i: Request("/hang" if i == 0 else "/status/204"),
        host="t",
        rate=20,
        duration_s=0.5,
        timeout_s=0.3,
    )
    assert result.transport_errors == {"timeout": 1}
    assert result.statuses == {"204": 9}
    assert result.max_ms >= 300


def test_open_loop_splits_figures_by_kind(server):
    """With kind_of, each kind of an interleaved schedule gets its own counts, statuses,
    transport errors and latencies (the busy-clinic scenario's rows); the totals are as
    without it, and without it there is no split."""
    kinds = ["read", "read", "read", "write"]  # 3:1
    paths = {"read": "/status/200", "write": "/status/500"}

    def make(i: int) -> Request:
        return Request("/hang" if i == 3 else paths[kinds[i % 4]])

    result = open_loop(
        server.url,
        make,
        host="t",
        rate=40,
        duration_s=1,
        timeout_s=0.3,
        kind_of=lambda i: kinds[i % 4],
    )
    assert result.scheduled == 40
    assert result.statuses == {"200": 30, "500": 9}
    assert set(result.by_kind) == {"read", "write"}
    read, write = result.kind("read"), result.kind("write")
    assert (read.scheduled, read.requests, read.statuses) == (30, 30, {"200": 30})
    assert read.server_errors == 0 and read.transport_errors == {}
    assert (write.scheduled, write.requests, write.statuses) == (10, 9, {"500": 9})
    assert write.server_errors == 9
    assert write.transport_errors == {"timeout": 1}
    assert write.max_ms >= 300 > read.max_ms  # the timed-out request is the write kind's
    assert read.offered_rps == 30 and write.offered_rps == 10
    assert read.achieved_rps > write.achieved_rps > 0
    assert result.kind("write", ok_statuses=(500,)).errors == 1  # the timeout
    assert read.cpu == {} and read.by_kind == {}
    plain = open_loop(server.url, lambda i: Request("/status/200"), host="t", rate=20, duration_s=1)
    assert plain.by_kind == {}


def test_closed_loop_python_sends_every_request_in_turn(server):
    requests = [Request(f"/status/200?i={i}") for i in range(10)]
    result = closed_loop_python(server.url, requests, host="t", connections=4, duration_s=0.5)
    assert result.requests > 10
    assert set(server.paths) == {r.path for r in requests}
    assert result.errors == 0


def test_wrk_capacity_counts_statuses_and_spreads_requests_over_threads(server):
    requests = [Request(f"/status/{200 if i % 2 else 409}?i={i}") for i in range(10)]
    result = capacity(
        server.url,
        requests,
        host="t",
        connections=4,
        duration_s=1,
        threads=2,
        ok_statuses=(200, 409),
    )
    assert set(server.paths) == {r.path for r in requests}
    assert result.requests == sum(result.statuses.values())
    assert set(result.statuses) == {"200", "409"}
    assert result.errors == 0
    assert result.achieved_rps > 0

"""Start, watch and stop the app's processes for a benchmark run (the production layout of the
Procfile), and read their memory from /proc."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# The web server of the Procfile: 2 worker processes x 4 threads for 2 cores, each worker with
# a psycopg pool of 4 connections (one per thread).
WEB_WORKERS = 2
WEB_THREADS = 4
# glibc gives each thread that allocates its own malloc arena: with 4 threads handling answers of
# hundreds of KB (availability) the freed memory stayed scattered over them and RSS grew.
WEB_MALLOC_ARENAS = "2"
WEB_DB_POOL = 4
CELERY_CONCURRENCY = 2
# The websocket server and the Celery workers keep their database connections (the Procfile's
# CONN_MAX_AGE): with a new one per websocket connect and per job, a burst of 50 connects held
# up event delivery by 200-300 ms (PostgreSQL forks a backend for each connection).
PERSISTENT_CONNECTIONS = "300"


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http_get(port: int, path: str, host: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@dataclass
class Service:
    """One process group of the layout. `ready` is (port, path, host) polled for a 200, or a
    bare port that must accept connections, or None (no readiness probe)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    port: int | None = None
    ready_path: str | None = None
    ready_host: str = "localhost"
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    description: str = ""
    worker_pids_at_start: list[int] = field(default_factory=list)
    cwd: Path = ROOT  # the source tree it runs (another checkout for a before/after row)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        """The worker processes (children of the main process)."""
        return children(self.pid) if self.proc else []

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "\n".join(text)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Stack:
    """The processes this run started; stops every one of them (process groups) on exit,
    including on Ctrl-C and exceptions."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.services: list[Service] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()

    def start(self, service: Service, timeout: float = 90) -> Service:
        if service.port is not None and port_in_use(service.port):
            raise RuntimeError(
                f"port {service.port} for {service.name} is in use (another bench run?); "
                "choose others with --port"
            )
        log = service.log_path.open("ab")
        service.proc = subprocess.Popen(
            service.argv,
            cwd=service.cwd,
            env=service.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped as a whole
        )
        log.close()
        service.started_at = time.monotonic()
        self.services.append(service)
        self._wait_ready(service, timeout)
        service.worker_pids_at_start = sorted(service.worker_pids())
        return service

    def _wait_ready(self, service: Service, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not service.alive():
                raise RuntimeError(
                    f"{service.name} exited ({service.proc.returncode}) while starting:\n"
                    f"{service.log_tail()}"
                )
            if service.port is None:
                return
            if service.ready_path is None:
                if port_in_use(service.port):
                    return
            else:
                try:
                    status, body = http_get(service.port, service.ready_path, service.ready_host)
                    if status == 200:
                        return
                    last = f"{status} {body[:300]!r}"
                except OSError as exc:
                    last = str(exc)
            time.sleep(0.25)
        raise RuntimeError(
            f"{service.name} not ready within {timeout:.0f} s (last: {last}):\n{service.log_tail()}"
        )

    def stop(self, service: Service, timeout: float = 20) -> None:
        if service.proc is None:
            return
        if service.proc.poll() is None:
            try:
                os.killpg(service.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                service.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(service.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                service.proc.wait()
        # Whatever is left of the group (a worker that outlived its parent).
        try:
            os.killpg(service.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if service in self.services:
            self.services.remove(service)

    def stop_all(self) -> None:
        # Ctrl-C during a stop must not leave the rest running.
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for service in reversed(list(self.services)):
                self.stop(service)
        finally:
            signal.signal(signal.SIGINT, old)


def granian(
    *,
    name: str,
    port: int,
    env: dict[str, str],
    log_dir: Path,
    ready_host: str,
    ready_path: str = "/health/",
    settings_module: str | None = None,
    cwd: Path = ROOT,
) -> Service:
    """The Procfile's `web` line: granian WSGI, 2 workers x 4 threads, pool of 4 per worker
    (of the source tree in `cwd`: this checkout unless a row measures another)."""
    env = {**env, "DB_POOL_MAX_SIZE": str(WEB_DB_POOL), "MALLOC_ARENA_MAX": WEB_MALLOC_ARENAS}
    if settings_module:
        env["DJANGO_SETTINGS_MODULE"] = settings_module
    argv = [
        str(BIN / "granian"),
        "--interface", "wsgi", "clinic.wsgi:application",
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(WEB_WORKERS), "--blocking-threads", str(WEB_THREADS),
        "--no-ws",
    ]  # fmt: skip
    return Service(
        name=name,
        argv=argv,
        env=env,
        log_path=log_dir / f"{name}.log",
        port=port,
        ready_path=ready_path,
        ready_host=ready_host,
        cwd=cwd,
        description=(
            f"granian WSGI on :{port}, {WEB_WORKERS} workers x {WEB_THREADS} threads, "
            f"DB pool {WEB_DB_POOL} per worker"
            + (f", settings {settings_module}" if settings_module else "")
        ),
    )


def daphne(*, port: int, env: dict[str, str], log_dir: Path) -> Service:
    """The Procfile's `ws` line."""
    return Service(
        name="ws",
        argv=[
            str(BIN / "daphne"),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "clinic.asgi:application",
        ],  # fmt: skip
        env={**env, "CONN_MAX_AGE": PERSISTENT_CONNECTIONS},
        log_path=log_dir / "ws.log",
        port=port,
        description=f"daphne ASGI (websockets) on :{port}, 1 process",
    )


def celery_worker(*, env: dict[str, str], log_dir: Path, queue: str, nice: int = 0) -> Service:
    """The Procfile's `worker` line, on the bench's own queue (`nice`: at that CPU priority,
    as deploy/systemd runs the notifications worker)."""
    return Service(
        name="worker",
        argv=[
            *(["nice", "-n", str(nice)] if nice else []),
            str(BIN / "celery"),
            "-A",
            "clinic",
            "worker",
            "--loglevel=WARNING",
            f"--concurrency={CELERY_CONCURRENCY}",
            "-Q",
            queue,
            "-n",
            f"{queue}@%h",
        ],  # fmt: skip
        env={**env, "CONN_MAX_AGE": PERSISTENT_CONNECTIONS},
        log_path=log_dir / "worker.log",
        description=f"celery worker, prefork concurrency {CELERY_CONCURRENCY}, queue {queue}"
        + (f", nice {nice}" if nice else ""),
    )


def celery_beat(*, env: dict[str, str], log_dir: Path) -> Service:
    return Service(
        name="beat",
        argv=[
            str(BIN / "celery"),
            "-A",
            "clinic",
            "beat",
            "--loglevel=WARNING",
            "--schedule",
            str(log_dir / "celerybeat-schedule"),
        ],  # fmt: skip
        env=env,
        log_path=log_dir / "beat.log",
        description="celery beat, 1 process",
    )


# --------------------------------------------------------------------------------------------
# /proc
# --------------------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Direct children of `pid` (all its threads)."""
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                out += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    except OSError:
        return []
    return sorted(set(out))


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) from /proc/<pid>/status, Pss from smaps_rollup, in kB."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, value = line.partition(":")
            if key == "Pss":
                out["Pss"] = int(value.split()[0])
    except OSError:
        pass
    return out


def process_tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += children(current)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (/proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """How busy the machine was during a measurement, and how much of that was not this run
    (other engineers' tests share the machine): compare /proc/stat with the CPU time of this
    process, its children (wrk), the servers it started and the PostgreSQL backends serving its
    databases (`backends()` lists their pids; PostgreSQL runs on this machine)."""

    def __init__(self, stack: Stack, backends: Callable[[], list[int]] | None = None):
        self.stack = stack
        self.backends = backends

    def _ours(self) -> dict[object, float]:
        own = os.times()
        snapshot: dict[object, float] = {
            "self": own.user + own.system + own.children_user + own.children_system
        }
        for service in self.stack.services:
            if service.alive():
                for pid in process_tree(service.pid):
                    snapshot[(service.name, pid)] = cpu_seconds(pid)
        for pid in self.backends() if self.backends else []:
            snapshot[("postgres", pid)] = cpu_seconds(pid)
        return snapshot

    @staticmethod
    def _machine() -> tuple[float, float]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK"), time.monotonic()

    def __enter__(self) -> CpuMeter:
        self.busy0, self.t0 = self._machine()
        self.ours0 = self._ours()
        return self

    def __exit__(self, *exc) -> None:
        busy, t = self._machine()
        ours_end = self._ours()
        capacity = max(t - self.t0, 1e-9) * (os.cpu_count() or 1)
        by_process: dict[str, float] = {}
        for key, cpu in ours_end.items():
            name = key[0] if isinstance(key, tuple) else "harness (generator, wrk)"
            by_process[name] = by_process.get(name, 0.0) + cpu - self.ours0.get(key, 0.0)
        self.result = {
            "machine_busy_pct": round(100 * (busy - self.busy0) / capacity, 1),
            "this_run_pct": round(100 * sum(by_process.values()) / capacity, 1),
            "by_process_pct": {k: round(100 * v / capacity, 1) for k, v in by_process.items()},
        }
        self.result["others_pct"] = max(
            0.0, round(self.result["machine_busy_pct"] - self.result["this_run_pct"], 1)
        )


def pg_data_directory() -> Path | None:
    """PostgreSQL's data directory, when this machine's PostgreSQL serves the bench (superuser
    or pg_read_all_settings needed; None otherwise)."""
    from django.db import DatabaseError, connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW data_directory")
            found = Path(cursor.fetchone()[0])
    except DatabaseError:
        return None
    return found if found.exists() else None


def checkpoint() -> None:
    """Write every dirty page now (superuser or pg_checkpoint needed; else nothing)."""
    from django.db import DatabaseError, connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except DatabaseError:
        pass


class FsyncProbe:
    """How long the disk under PostgreSQL's data takes to make 8 kB durable, sampled every
    50 ms in a thread during a measurement (write + fdatasync of a file beside the data
    directory). Every booking waits for one such flush of the WAL at COMMIT, so a stall here
    is a stall of every commit: the probe tells the machine's share of a latency tail from
    ours. Falls back to the temp directory (maybe another disk: then it says so)."""

    INTERVAL_S = 0.05  # 20 flushes a second: enough to see a stall, little added to the disk
    STALL_MS = 10

    def __init__(self, directory: Path | None):
        beside = directory.parent if directory is not None else None
        usable = beside is not None and os.access(beside, os.W_OK)
        self.where = beside if usable else Path(tempfile.gettempdir())
        self.beside_data = usable
        self.samples: list[float] = []
        self._stop = threading.Event()

    def _run(self) -> None:
        path = self.where / f".bench-fsync-probe-{os.getpid()}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        block = b"\0" * 8192
        try:
            while not self._stop.wait(self.INTERVAL_S):
                os.pwrite(fd, block, 0)
                started = time.perf_counter()
                os.fdatasync(fd)
                self.samples.append((time.perf_counter() - started) * 1000)
        finally:
            os.close(fd)
            path.unlink(missing_ok=True)

    def __enter__(self) -> FsyncProbe:
        self._thread = threading.Thread(target=self._run, name="fsync-probe", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        ordered = sorted(self.samples)
        self.result = {
            "where": "beside PostgreSQL's data" if self.beside_data else "temp directory",
            "samples": len(ordered),
            "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 2) if ordered else None,
            "max_ms": round(ordered[-1], 1) if ordered else None,
            f"over_{self.STALL_MS}_ms": sum(1 for ms in ordered if ms > self.STALL_MS),
        }

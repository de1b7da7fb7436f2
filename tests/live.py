"""Live servers and a real browser for end-to-end tests.

The app is served for real against the test database, as in production (Procfile): HTTP by
granian (WSGI) and websockets by daphne (ASGI), each on a free port, in their own process
groups. Clinic hosts are `<slug>.localhost:<port>`, which Chromium resolves to 127.0.0.1 by
itself. Tests that write data use the `committed` fixture (tests/fixtures.py) so the servers'
connections see it.

Fixtures:
- `live_servers` (session): a `LiveServers` with `url(clinic, path)` and `base_urls` (per test
  clinic), the ports and the environment the servers run with;
- `live_worker` (function): `start(delay=0.0)` runs a Celery worker for the live stack, on
  the default queue and on the live servers' own smart-booking queue (so only this worker
  runs the smart-booking jobs those servers queue, with an optional pause after each job
  starts); stopped after the test;
- `browser` (module): Playwright's Chromium, Debian's build at /usr/bin/chromium (`make
  browser-deps` installs it; Playwright's own browser download does not work here).

`open_page(browser, ...)` opens a page in a fresh context (own cookies); `save_screenshots(page,
name)` writes `artifacts/screenshots/<name>-desktop.png` and `<name>-phone.png`;
`in_thread(fn, ...)` runs code that needs `async_to_sync` (services that publish events) while
the browser is open.
"""

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings

from tests.fixtures import TEST_CLINICS, _wait_for_worker, start_worker, stop_worker

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports, bound all at once: two calls of a one-port helper can get
    the same port back (the kernel reuses the one just closed), and two servers were once
    given one port (the websocket server failed to listen)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


def live_database_url() -> str:
    """The test database (pytest-django's `test_<name>`), for processes started by a test."""
    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}{port}/{db['NAME']}"


@dataclass
class LiveServers:
    http_port: int
    ws_port: int
    env: dict[str, str]
    smart_queue: str
    log_dir: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def host(self, clinic) -> str:
        slug = getattr(clinic, "slug", clinic)
        return f"{slug}.{settings.CLINIC_BASE_DOMAIN}:{self.http_port}"

    def url(self, clinic, path: str = "") -> str:
        """`http://<slug>.localhost:<port><path>` for a Clinic or a slug."""
        return f"http://{self.host(clinic)}{path}"

    @property
    def base_urls(self) -> dict[str, str]:
        """The base URL of each test clinic: {"acme": "http://acme.localhost:<port>", ...}."""
        return {slug: self.url(slug) for slug in TEST_CLINICS}

    def logs(self) -> str:
        out = []
        for log in sorted(self.log_dir.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-40:]
            out.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(out)


def _answers_http(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/health/", headers={"Host": settings.CLINIC_BASE_DOMAIN})
        connection.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        connection.close()


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _start(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped as a whole
        )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass


def _server_env(http_port: int, ws_port: int, smart_queue: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(
        DATABASE_URL=live_database_url(),
        REDIS_URL=settings.REDIS_URL,
        CLINIC_HTTP_PORT=str(http_port),
        CLINIC_WS_PORT=str(ws_port),
        SMART_BOOKING_QUEUE=smart_queue,
        # Tests create and drop clinics: no per-process host cache to go stale.
        CLINIC_DOMAIN_CACHE_SECONDS="0",
        DEBUG="0",
        DB_POOL_MAX_SIZE="0",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="session")
def live_servers(django_db_setup) -> Iterator[LiveServers]:
    """HTTP (granian) and websockets (daphne) for the test database, on free ports."""
    http_port, ws_port = free_ports(2)
    smart_queue = f"{settings.CELERY_TASK_DEFAULT_QUEUE}-live-smart"
    env = _server_env(http_port, ws_port, smart_queue)
    log_dir = Path(tempfile.mkdtemp(prefix="clinic-live-"))
    servers = LiveServers(http_port, ws_port, env, smart_queue, log_dir)
    http_argv = [
        str(BIN / "granian"), "--interface", "wsgi", "clinic.wsgi:application",
        "--host", "127.0.0.1", "--port", str(http_port),
        "--workers", "1", "--blocking-threads", "4", "--no-ws", "--log-level", "warning",
    ]  # fmt: skip
    ws_argv = [str(BIN / "daphne"), "--bind", "127.0.0.1", "--port", str(ws_port),
               "-v", "0", "clinic.asgi:application"]  # fmt: skip
    try:
        servers.processes.append(_start(http_argv, env, log_dir / "http.log"))
        servers.processes.append(_start(ws_argv, env, log_dir / "ws.log"))
        deadline = time.monotonic() + 60
        while not (_answers_http(http_port) and _accepts(ws_port)):
            dead = [proc for proc in servers.processes if proc.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"the live servers did not start:\n{servers.logs()}")
            time.sleep(0.2)
        yield servers
    finally:
        for proc in reversed(servers.processes):
            _stop(proc)


@pytest.fixture
def live_worker(live_servers) -> Iterator[Callable[..., subprocess.Popen]]:
    """start(delay=0.0): a Celery worker on the default queue and the live servers'
    smart-booking queue; `delay` pauses each smart-booking job after it starts (so a test can
    watch the `running` state)."""
    started: list[subprocess.Popen] = []

    def start(delay: float = 0.0) -> subprocess.Popen:
        name = f"live{len(started)}"
        queues = f"{settings.CELERY_TASK_DEFAULT_QUEUE},{live_servers.smart_queue}"
        proc = start_worker(
            "--concurrency=1", "--pool=solo", name=name, queue=queues,
            env={"SMART_BOOKING_STEP_DELAY": str(delay), "DJANGO_ALLOW_ASYNC_UNSAFE": ""},
        )  # fmt: skip
        started.append(proc)
        _wait_for_worker(name=name)
        return proc

    yield start
    for proc in started:
        stop_worker(proc)


@pytest.fixture(scope="module")
def browser():
    """Chromium through Playwright's sync API. Never skipped: a missing browser fails."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser-deps` (apt-get install chromium)")
    # Playwright's sync API runs an asyncio loop in this thread, which Django takes for an
    # async context and refuses ORM calls in; the test's own ORM calls are plain synchronous
    # code, so the check is lifted while the browser is open.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def in_thread(fn: Callable, *args, **kwargs):
    """Run `fn` in a thread of its own and return its result (or raise its error).

    While Playwright's sync API is open, this thread has a running event loop, and
    `async_to_sync` (used by `realtime.publish`, so by every booking service) refuses to run
    in it. The thread gets its own database connection, closed at the end."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def run():
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


# What Chromium says of a Content Security Policy violation ("Refused to execute inline script
# because it violates the following Content Security Policy directive..."), and what the
# `securitypolicyviolation` listener below logs: any of it in a browser test fails the test.
CSP_MESSAGE = "Content Security Policy"
CSP_VIOLATIONS: list[str] = []
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`Content Security Policy violation: ${event.effectiveDirective} blocked ` +
                `${event.blockedURI || "inline"} at ${event.documentURI}`);
});
"""


def csp_watch(context) -> None:
    """Record every CSP violation of the context's pages in CSP_VIOLATIONS (the
    `_no_csp_violations` fixture fails the test on any). open_page does it; a test that makes
    its own context calls it."""
    context.add_init_script(_CSP_LISTENER)

    def on_console(message) -> None:
        if CSP_MESSAGE in message.text:
            CSP_VIOLATIONS.append(f"{message.page.url if message.page else ''}: {message.text}")

    context.on("console", on_console)


@pytest.fixture(autouse=True)
def _no_csp_violations() -> Iterator[None]:
    """Browser tests run under the app's Content Security Policy (on everywhere): a page of
    ours that breaks it (an inline script or style, a handler attribute, a connection to
    another origin) fails the test that opened it."""
    CSP_VIOLATIONS.clear()
    yield
    violations, CSP_VIOLATIONS[:] = list(CSP_VIOLATIONS), []
    assert not violations, "Content Security Policy violations:\n" + "\n".join(violations)


def open_page(browser, *, timezone_id: str = "America/New_York", **context_options):
    """A page in a new browser context (its own cookies), desktop-sized, English, its CSP
    violations recorded (csp_watch)."""
    context = browser.new_context(
        viewport=DESKTOP,
        locale="en-US",
        timezone_id=timezone_id,
        accept_downloads=True,
        **context_options,
    )
    context.set_default_timeout(15_000)
    csp_watch(context)
    return context.new_page()


def save_screenshots(page, name: str) -> None:
    """Full-page screenshots at desktop (1280x800) and phone (390x844) width."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    viewport = page.viewport_size or DESKTOP
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(150)  # let the layout settle after the resize
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(viewport)

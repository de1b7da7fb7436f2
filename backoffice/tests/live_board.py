"""Live servers for the schedule board's browser test: HTTP through granian (WSGI, as in
production) and websockets through daphne (ASGI) on two free ports, both on the test database
and this run's Redis prefixes. Committed data only (the `committed` fixture): the servers are
other processes.

Kept apart from the portal's `tests/live.py` (built in parallel on another branch) so the two
do not collide; they are meant to be unified later.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from django.conf import settings

from tests.live import free_ports

ROOT = Path(__file__).resolve().parents[2]
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


@dataclass
class LiveServers:
    http_port: int
    ws_port: int

    def url(self, slug: str, path: str = "/") -> str:
        return f"http://{slug}.{settings.CLINIC_BASE_DOMAIN}:{self.http_port}{path}"

    def http(self, slug: str) -> httpx.Client:
        """An HTTP client for a clinic's host (sent to 127.0.0.1: `*.localhost` need not
        resolve outside browsers)."""
        host = f"{slug}.{settings.CLINIC_BASE_DOMAIN}:{self.http_port}"
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.http_port}", headers={"Host": host}, timeout=10
        )


def _environment(http_port: int, ws_port: int) -> dict[str, str]:
    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return {
        **os.environ,  # this run's cache and channel-layer prefixes (tests/testenv.py)
        "DATABASE_URL": f"postgres://{db['USER']}{password}@{db['HOST']}{port}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "CLINIC_HTTP_PORT": str(http_port),
        "CLINIC_WS_PORT": str(ws_port),
        "CLINIC_DOMAIN_CACHE_SECONDS": "0",
        "DEBUG": "0",
        "PYTHONUNBUFFERED": "1",
    }


def _wait_until_serving(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def live_servers() -> Iterator[LiveServers]:
    http_port, ws_port = free_ports(2)
    env = _environment(http_port, ws_port)
    http_cmd = [
        str(BIN / "granian"), "--interface", "wsgi", "clinic.wsgi:application",
        "--host", "127.0.0.1", "--port", str(http_port), "--workers", "1",
        "--blocking-threads", "4", "--no-ws", "--log-level", "warning",
    ]  # fmt: skip
    ws_cmd = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(ws_port), "clinic.asgi:application"]
    procs = []
    try:
        for cmd, port in ((http_cmd, http_port), (ws_cmd, ws_port)):
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
            procs.append(proc)
            _wait_until_serving(port, proc)
        yield LiveServers(http_port=http_port, ws_port=ws_port)
    finally:
        for proc in procs:
            _stop(proc)


@contextmanager
def chromium_browser():
    """Playwright driving Debian's Chromium (no downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()

"""Loaded with `-p tests.testenv` (pyproject addopts), before Django's settings are imported.

The run's clock is set first: every process of a run reads the instant the run chose
(tests/clock.py), never the wall clock. Each test run gets a private Celery queue and cache /
channel-layer prefixes, so a test run never shares a worker or keys with `make run` or with
another test run on the same machine.
"""

import os
import secrets

from tests import clock

# Before anything reads the time: this process and every process it starts read the run's
# chosen instant (tests/clock.py), so no test depends on the hour or the day it runs.
clock.start()

_RUN = f"test{os.getpid()}"
os.environ.setdefault("CELERY_QUEUE", f"clinic-{_RUN}")
os.environ.setdefault("CACHE_KEY_PREFIX", f"clinic-{_RUN}")
os.environ.setdefault("CHANNEL_LAYER_PREFIX", f"clinic-{_RUN}:asgi")
os.environ.setdefault("CLINIC_FAST_PASSWORD_HASHER", "1")
# Keys of this run only (clinic/keys.py), whatever the environment holds: a test run serves with
# DEBUG=0 (the live servers), and its processes share these. Two JWT keys, as just after a
# rotation: tests sign with the previous one too (accounts/tests/test_keys.py).
# Plain HTTP on localhost, as `make run`: no HSTS, Secure cookies or trusted proxy header
# (tests/test_production_headers.py starts a server of its own with CLINIC_PRODUCTION=1).
os.environ["CLINIC_PRODUCTION"] = "0"
os.environ["SECRET_KEY"] = secrets.token_urlsafe(48)
os.environ["JWT_SIGNING_KEYS"] = (
    f"{_RUN}-current:{secrets.token_urlsafe(48)},{_RUN}-previous:{secrets.token_urlsafe(48)}"
)
# Test receivers of webhooks listen on 127.0.0.1 (webhooks/tests/test_addresses.py turns the
# SSRF check back on where it tests it).
os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE_URLS", "1")
# A test's own transaction reads the audit events of its requests: written right after each
# response (audit/tests/test_trail.py tests the batch writer itself).
os.environ.setdefault("AUDIT_FLUSH_SECONDS", "0")
# Two cores shared by many test processes: a Redis reply can take longer than production's
# budget (clinic.resilience), and a rate-limit test must not see its limit fail open.
# tests/faults.py serves its stack with the production values.
os.environ.setdefault("REDIS_SOCKET_TIMEOUT", "2")
os.environ.setdefault("REDIS_CONNECT_TIMEOUT", "2")
# Tests roll their writes back, so the commits that make cached public answers stale never
# happen: the answer cache is off except in tests/test_answer_cache.py, which turns it on.
os.environ.setdefault("ANSWER_CACHE_SECONDS", "0")
# Tests travel hours and days between two requests of one staff session (check in at 9, complete
# at 11): staff session timeouts are far off, except in tests/test_staff_sessions.py, which sets
# its own.
os.environ.setdefault("STAFF_SESSION_IDLE_MINUTES", str(365 * 24 * 60))
os.environ.setdefault("STAFF_SESSION_MAX_HOURS", str(365 * 24))
# Every test signs up, signs in and resets passwords from 127.0.0.1 and the run's clock may
# stand still, so the per-address rates of those pages would add up across tests: high here;
# accounts/tests/test_lockout.py sets the real ones where it tests them.
for _scope in ("LOGIN", "SIGNUP", "PASSWORD_RESET", "PASSWORD_RESET_EMAIL"):
    os.environ.setdefault(f"THROTTLE_{_scope}", "100000/min")


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "clock: reads the time; `make test-clock` runs it at each instant"
    )
    config.addinivalue_line("markers", "live: drives the live servers or a browser (tests/live.py)")
    config.addinivalue_line(
        "markers", "deploy: checks deploy/ with nginx -t and systemd-analyze (make test-deps)"
    )


def pytest_collection_modifyitems(config, items) -> None:
    root = config.rootpath
    for item in items:
        if item.path.relative_to(root).as_posix().startswith(clock.CLOCK_SENSITIVE):
            item.add_marker("clock")
        if {"live_servers", "browser"} & set(getattr(item, "fixturenames", ())):
            item.add_marker("live")

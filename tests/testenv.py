"""Loaded with `-p tests.testenv` (pyproject addopts), before Django's settings are imported.

The run's clock is set first: every process of a run reads the instant the run chose
(tests/clock.py), never the wall clock. Each test run gets a private Celery queue and cache /
channel-layer prefixes, so a test run never shares a worker or keys with `make run` or with
another test run on the same machine.
"""

import os
import secrets

import pytest

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


# A test that hangs is failed by pytest-timeout, which prints the Python stacks; the database
# side of the hang is printed here, shortly before: every backend of the test database, what it
# waits on and who blocks it, so a lock a worker, server or thread left held is named in CI's log.
HANG_REPORT_BEFORE_TIMEOUT = 45

_BACKENDS = """
SELECT a.pid, a.pid = %s AS ours, coalesce(nullif(a.application_name, ''), a.backend_type),
       a.state, round(extract(epoch FROM now() - a.xact_start)), a.wait_event_type,
       a.wait_event, pg_blocking_pids(a.pid), left(a.query, 300),
       (SELECT string_agg(l.locktype || ' ' || l.mode || coalesce(' ' || l.relation::regclass::text,
                          '') || coalesce(' ' || l.classid || '/' || l.objid, ''), '; ')
          FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted)
  FROM pg_stat_activity a
 WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
 ORDER BY a.xact_start NULLS LAST
"""


def _report_hang(nodeid: str, backend_pid: int | None) -> None:
    import sys

    import psycopg
    from django.db import connection

    db = connection.settings_dict
    try:
        with psycopg.connect(
            dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"] or 5432,
            password=db["PASSWORD"] or None, autocommit=True, connect_timeout=10,
        ) as conn:  # fmt: skip
            rows = conn.execute(_BACKENDS, [backend_pid or 0]).fetchall()
    except Exception as error:  # a report, never the test's failure
        rows, failed = [], error
    else:
        failed = None
    out = sys.__stderr__
    print(f"\n--- {nodeid} still running: the test database's backends ---", file=out)
    if failed is not None:
        print(f"(could not read them: {failed})", file=out)
    for pid, ours, name, state, age, wait_type, wait, blockers, query, waiting in rows:
        print(
            f"{pid}{' (this test)' if ours else ''} {name} {state} xact {age}s "
            f"wait {wait_type}/{wait} blocked by {blockers} waiting for [{waiting}]: {query}",
            file=out,
        )
    out.flush()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    import threading

    from django.db import connection

    marker = item.get_closest_marker("timeout")
    timeout = (
        float(marker.args[0])
        if marker and marker.args
        else float(item.config.getini("timeout") or 0)
    )
    timer = None
    if timeout > HANG_REPORT_BEFORE_TIMEOUT:
        pid = connection.connection.info.backend_pid if connection.connection else None
        timer = threading.Timer(
            timeout - HANG_REPORT_BEFORE_TIMEOUT, _report_hang, (item.nodeid, pid)
        )
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()

"""Loaded with `-p tests.testenv` (pyproject addopts), before Django's settings are imported.

The run's clock is set first: every process of a run reads the instant the run chose
(tests/clock.py), never the wall clock. Each test run gets a private Celery queue and cache /
channel-layer prefixes, so a test run never shares a worker or keys with `make run` or with
another test run on the same machine.
"""

import os

from tests import clock

# Before anything reads the time: this process and every process it starts read the run's
# chosen instant (tests/clock.py), so no test depends on the hour or the day it runs.
clock.start()

_RUN = f"test{os.getpid()}"
os.environ.setdefault("CELERY_QUEUE", f"clinic-{_RUN}")
os.environ.setdefault("CACHE_KEY_PREFIX", f"clinic-{_RUN}")
os.environ.setdefault("CHANNEL_LAYER_PREFIX", f"clinic-{_RUN}:asgi")
os.environ.setdefault("CLINIC_FAST_PASSWORD_HASHER", "1")
# Tests roll their writes back, so the commits that make cached public answers stale never
# happen: the answer cache is off except in tests/test_answer_cache.py, which turns it on.
os.environ.setdefault("ANSWER_CACHE_SECONDS", "0")


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "clock: reads the time; `make test-clock` runs it at each instant"
    )
    config.addinivalue_line("markers", "live: drives the live servers or a browser (tests/live.py)")


def pytest_collection_modifyitems(config, items) -> None:
    root = config.rootpath
    for item in items:
        if item.path.relative_to(root).as_posix().startswith(clock.CLOCK_SENSITIVE):
            item.add_marker("clock")
        if {"live_servers", "browser"} & set(getattr(item, "fixturenames", ())):
            item.add_marker("live")

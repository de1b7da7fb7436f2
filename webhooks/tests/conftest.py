"""The webhook tests' receiver: a real HTTP server on 127.0.0.1 (receiver.py)."""

from collections.abc import Iterator

import pytest

from usage.tests.test_counters import clean_usage  # noqa: F401  (usage's fixture)

from .receiver import Receiver, start, stop


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = start(Receiver())
    try:
        yield running
    finally:
        stop(running)

"""Faults survived: what the app does while Redis or PostgreSQL is down or hung.

Redis carries nothing a request cannot do without: the answer cache, rate limits, the Celery
broker's publishes and the channel layer's. Every Redis client the app makes has short socket
timeouts (`REDIS_CONNECT_TIMEOUT`, `REDIS_SOCKET_TIMEOUT`), and every call goes through one
circuit breaker per process (`redis_breaker`, the `circuitbreaker` library): after
`REDIS_BREAKER_FAILURES` connection errors or timeouts in a row, calls fail at once for
`REDIS_BREAKER_SECONDS`, then one try is let through again. A failed or skipped call *fails
open*: a cache read misses, a rate limit lets the request through, a publish is dropped (the
sweeps queue the rows left behind) — logged and counted (`fail_open_counts`, in `/health/` for
platform operators).

PostgreSQL down is a 503 with `Retry-After` (`DATABASE_UNAVAILABLE`, `is_database_unavailable`):
problem JSON for API clients, a friendly page for browsers (clinic.errors). A request that met
a broken pooled connection on a GET or HEAD is run once more (clinic.middleware).
"""

import logging
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any, TypeVar

import redis
from circuitbreaker import CircuitBreaker, CircuitBreakerError
from django.conf import settings
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerOperationalError

log = logging.getLogger(__name__)

T = TypeVar("T")

# What "Redis is unreachable" looks like to each client: redis-py's, kombu's (the broker),
# a publish that outlived its budget, and the breaker's own refusal.
REDIS_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    BrokerOperationalError,
    FutureTimeoutError,
    TimeoutError,
    CircuitBreakerError,
)


class RedisUnavailableError(redis.ConnectionError):
    """Redis did not answer (or the breaker is open): raised by `redis_call(..., raising=True)`.
    A redis ConnectionError, so code that handles Redis errors (task retries) handles it."""


redis_breaker = CircuitBreaker(
    failure_threshold=settings.REDIS_BREAKER_FAILURES,
    recovery_timeout=settings.REDIS_BREAKER_SECONDS,
    expected_exception=REDIS_ERRORS,
    name="redis",
)


@redis_breaker
def _through_breaker(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return fn(*args, **kwargs)


_counts_lock = threading.Lock()
fail_open_counts: Counter[str] = Counter()


def _failed_open(kind: str, error: BaseException) -> None:
    with _counts_lock:
        fail_open_counts[kind] += 1
    if not isinstance(error, CircuitBreakerError):  # the breaker's refusals are only counted
        log.warning("redis unavailable, %s failed open: %s: %s", kind, type(error).__name__, error)


def redis_call(
    kind: str,
    fn: Callable[..., T],
    *args: Any,
    default: Any = None,
    raising: bool = False,
    **kw,
) -> T | Any:
    """`fn(*args, **kw)` through the breaker. When Redis does not answer: `default` (or
    RedisUnavailableError with `raising=True`), counted under `kind`."""
    try:
        return _through_breaker(fn, *args, **kw)
    except REDIS_ERRORS as error:
        _failed_open(kind, error)
        if raising:
            raise RedisUnavailableError(f"{kind}: Redis unavailable") from error
        return default


# PostgreSQL --------------------------------------------------------------------------------


def is_database_unavailable(error: BaseException | None) -> bool:
    """Whether `error` says PostgreSQL cannot be reached (down, restarting, a connection broken
    under us, no pooled connection within DB_POOL_TIMEOUT) rather than refusing a statement."""
    if isinstance(error, InterfaceError):
        return True
    if not isinstance(error, OperationalError):
        return False
    cause = error.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    # No SQLSTATE: the connection itself failed (refused, closed, timed out, pool timeout).
    # Class 08 (connection exception) and 57P01-57P03 (admin / crash shutdown, cannot connect
    # now) also mean "not now", unlike a deadlock or a statement timeout.
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03")


def is_broken_connection(error: BaseException | None) -> bool:
    """A connection that was open and broke (PostgreSQL restarted under a pooled connection),
    as opposed to one that could not be opened: worth one more try on a fresh connection."""
    if not is_database_unavailable(error):
        return False
    text = str(error).lower()
    return not any(
        marker in text
        for marker in ("connection failed", "connection refused", "couldn't get a connection")
    )

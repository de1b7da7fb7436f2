"""Counters in Redis hashes (usage metering, the answer cache's statistics), summed in each
process and written a batch at a time, off every request.

`hash_add` adds to a sum in this process (a dict under a lock: no round trip). A daemon
thread of the process writes what was summed every `COUNTS_FLUSH_SECONDS` in one pipelined
round trip (HINCRBY per field, then each key's HSETNX fields and EXPIRE); so does the process's
exit, a Celery worker process's shutdown, and every reader in the process before it reads
(`flush`: a process sees its own counts). Other processes' counts arrive within the interval.

Redis unreachable (through `clinic.resilience`'s breaker, failed open and counted under
`counts`): the sums stay for the next try, so an outage delays counts instead of losing them;
what waits is bounded by the distinct fields (clinic x kind x subject x group), not by the
number of counts. A process killed outright loses at most its last interval of counts.
"""

import atexit
import os
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache

from clinic.resilience import RedisUnavailableError, redis_call


@dataclass
class _Sums:
    incr: dict[tuple[str, str], int] = field(default_factory=dict)
    first: dict[tuple[str, str], str] = field(default_factory=dict)  # HSETNX: the first value
    expire: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.incr or self.first)

    def absorb(self, newer: "_Sums") -> None:
        """Take in what was counted after this batch (which Redis refused)."""
        for name, n in newer.incr.items():
            self.incr[name] = self.incr.get(name, 0) + n
        for name, value in newer.first.items():
            self.first.setdefault(name, value)
        self.expire.update(newer.expire)


_lock = threading.Lock()  # the sums
_flush_lock = threading.Lock()  # one batch written at a time (a reset waits for it)
_sums = _Sums()
_thread: threading.Thread | None = None


def hash_add(
    key: str, name: str, n: int = 1, *, first: tuple[str, str] | None = None, expire: int = 0
) -> None:
    """Add `n` to field `name` of hash `key`; `first=(field, value)` sets that field only if the
    hash has none yet (HSETNX: the first value counted wins); `expire` seconds for the key."""
    with _lock:
        _sums.incr[(key, name)] = _sums.incr.get((key, name), 0) + n
        if first is not None:
            _sums.first.setdefault((key, first[0]), first[1])
        if expire:
            _sums.expire[key] = expire
    if _thread is None:
        _start()


def flush() -> bool:
    """Write what this process has summed; False when Redis did not take it (it is kept)."""
    global _sums
    with _flush_lock:
        with _lock:
            batch, _sums = _sums, _Sums()
        if not batch:
            return True
        client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]  # RedisCache
        pipe = client.pipeline(transaction=False)
        for (key, name), n in batch.incr.items():
            pipe.hincrby(key, name, n)
        for (key, name), value in batch.first.items():
            pipe.hsetnx(key, name, value)
        for key, seconds in batch.expire.items():
            pipe.expire(key, seconds)
        try:
            redis_call("counts", pipe.execute, raising=True)
        except RedisUnavailableError:
            with _lock:
                batch.absorb(_sums)
                _sums = batch
            return False
        return True


def _run() -> None:
    while True:
        time.sleep(settings.COUNTS_FLUSH_SECONDS)
        flush()


def _start() -> None:
    global _thread
    with _lock:
        if _thread is not None:
            return
        _thread = threading.Thread(target=_run, name="clinic-counts", daemon=True)
    _thread.start()


def _forked() -> None:
    """A forked child (a Celery worker process) starts with no sums and no thread of its own."""
    global _sums, _thread, _lock, _flush_lock
    _lock, _flush_lock = threading.Lock(), threading.Lock()
    _sums, _thread = _Sums(), None


os.register_at_fork(after_in_child=_forked)
atexit.register(flush)

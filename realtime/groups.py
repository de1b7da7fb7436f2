"""Channel group names and the one `publish()` every app uses to push events.

An event that could not be sent (Redis down or hung) is lost to the sockets of its groups,
which stay open: the process remembers those groups and, once the channel layer answers again,
sends each of them `RESYNC` (`{"type": "resync"}`), retrying every
`REALTIME_RESYNC_RETRY_SECONDS` until it is through. A socket that hears it reads what it shows
again (the board re-renders, a job's socket sends the job as it is now, the waitlist page
fetches its offers), as after a reconnect."""

import asyncio
import logging
import os
import re
import threading
from collections.abc import Iterable

from channels.layers import get_channel_layer
from django.conf import settings

from clinic.requestlog import current_request_id
from clinic.resilience import RedisUnavailableError, redis_call
from clinic.tenancy import tenant_connection

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")
RESYNC = {"type": "resync"}
MISSED_GROUPS_MAX = 10_000  # past it, the oldest are dropped (their sockets stay stale)


def group_name(*parts: object, schema: str | None = None) -> str:
    """`<schema>.<part>.<part>`: every group belongs to one clinic, so no clinic can join
    another's group by guessing an id."""
    schema = schema or tenant_connection.schema_name
    name = ".".join([schema, *(_UNSAFE.sub("-", str(part)) for part in parts)])
    return name[:99]


class _SenderLoop:
    """One event loop per process, in a daemon thread, that runs every publish.

    channels_redis keeps its Redis connections per event loop, and `async_to_sync` runs each
    call in a fresh loop, so every publish would open (and close) a connection of its own. This
    loop lives as long as the process (a forked
    child, e.g. a Celery or web worker, starts its own on first use), so its connections are
    reused."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    loop = asyncio.new_event_loop()
                    threading.Thread(
                        target=loop.run_forever, name="realtime-publish", daemon=True
                    ).start()
                    self._loop, self._pid = loop, os.getpid()
        assert self._loop is not None
        return self._loop


_sender = _SenderLoop()


def publish(groups: str | Iterable[str], event: dict, *, trace: bool = True) -> None:
    """Send `event` (a JSON-able dict) to every socket in `groups` (one name or several: sent
    concurrently, one hand-off to the sender loop); returns once the channel layer has it
    (errors are raised here, as before).

    Call it from `transaction.on_commit` so nobody hears of a change that was rolled back.
    An event published while a request or a task runs carries its `request_id` (the one in
    the request's `X-Request-ID` answer and in the task's log lines), so a change seen on a
    socket can be traced to the request that made it; `trace=False` for an event that is an
    API document as it is (a smart-booking job's frame is its `GET` JSON).
    """
    request_id = current_request_id.get() if trace else ""
    if request_id and "request_id" not in event:
        event = {**event, "request_id": request_id}
    group_send(groups, {"type": "event.forward", "event": event})


def group_send(groups: str | Iterable[str], message: dict) -> None:
    """Send a channel-layer `message` (its `type` names the consumers' handler) to `groups`,
    from synchronous code, as `publish` does; returns once the channel layer has it."""
    layer = get_channel_layer()
    if layer is None:
        return
    names = [groups] if isinstance(groups, str) else list(groups)

    async def send() -> None:
        await asyncio.gather(*(layer.group_send(name, message) for name in names))

    def send_and_wait() -> None:
        sent = asyncio.run_coroutine_threadsafe(send(), _sender.get())
        try:
            sent.result(settings.REALTIME_PUBLISH_TIMEOUT)
        except TimeoutError:
            sent.cancel()  # a hung Redis: the send must not pile up in the loop
            raise

    # Redis down or hung: RedisUnavailableError within the budget (clinic.resilience); the
    # callers publish from `on_commit(..., robust=True)`. The groups are told to resync once
    # Redis answers again (`_missed`), and a socket that dropped resynchronises on reconnect.
    try:
        redis_call("channel-layer", send_and_wait, raising=True)
    except RedisUnavailableError:
        _missed.add(names)
        raise


class _MissedGroups:
    """The groups this process could not send an event to, told `RESYNC` from the sender loop
    once the channel layer answers (one retry task at a time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[str, None] = {}  # insertion-ordered: the oldest dropped first
        self._retrying = False
        self._pid = os.getpid()

    def add(self, names: list[str]) -> None:
        with self._lock:
            if self._pid != os.getpid():  # a forked child: its parent's retry is not its own
                self._names, self._retrying, self._pid = {}, False, os.getpid()
            for name in names:
                self._names.pop(name, None)
                self._names[name] = None
            while len(self._names) > MISSED_GROUPS_MAX:
                self._names.pop(next(iter(self._names)))
            if self._retrying:
                return
            self._retrying = True
        asyncio.run_coroutine_threadsafe(self._retry(), _sender.get())

    def pending(self) -> list[str]:
        with self._lock:
            return list(self._names)

    async def _retry(self) -> None:
        layer = get_channel_layer()
        message = {"type": "event.forward", "event": RESYNC}
        while True:
            await asyncio.sleep(settings.REALTIME_RESYNC_RETRY_SECONDS)
            names = self.pending()
            try:
                await asyncio.wait_for(
                    asyncio.gather(*(layer.group_send(name, message) for name in names)),
                    settings.REALTIME_PUBLISH_TIMEOUT,
                )
            except Exception as error:  # noqa: BLE001 - Redis still away: try again later
                logger.info("resync of %d groups not sent yet: %r", len(names), error)
                continue
            with self._lock:
                for name in names:
                    self._names.pop(name, None)
                if not self._names:
                    self._retrying = False
                    logger.warning("told %d socket groups to resync", len(names))
                    return


_missed = _MissedGroups()

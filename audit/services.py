"""Recording audit events: the one public way in.

`record(request, action, obj)` is what views, the admin and the pages call: the event is kept
in memory on the request and, after the response is sent, handed to the process's batch
writer, which writes what gathered every AUDIT_FLUSH_SECONDS (or as soon as 5,000 wait) in
transactions of at most 5,000 events, a COPY per clinic: auditing adds no query
to the request path, no transaction per request, and no statement that grows with the load.
`record_now(action, obj, user=...)` writes at once, in the current clinic's schema, for code
that runs without a request (Celery tasks, management commands).

Who: the request's user (and `client`, the API client's id when an API client made it);
which patient: given, or read from the object (a patient is its own, anything else carries a
`patient_id`); what: the object's content type and id, or a label; fields: the names of the
fields an update changed, never their values.

The trade-off of writing after the response: a failure to write (the database gone between the
response and the write, a bug) cannot fail a request that has already been answered, so it is
retried once and then logged at ERROR with every event it lost; a process killed with SIGKILL
loses at most its last AUDIT_FLUSH_SECONDS of events. Writing inside the request's transaction
would make the log exact at the cost of a write (and a failure mode) per request.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import queue
import re
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.http import HttpRequest
from django.utils import timezone
from psycopg import sql

from clinic.client_address import client_address  # behind TRUSTED_PROXIES, their X-Forwarded-For
from clinic.tenancy import tenant_connection

from .models import AuditEvent

logger = logging.getLogger(__name__)

READ = AuditEvent.Action.READ.value
CREATE = AuditEvent.Action.CREATE.value
UPDATE = AuditEvent.Action.UPDATE.value
DELETE = AuditEvent.Action.DELETE.value
EXPORT = AuditEvent.Action.EXPORT.value
ACTIONS = frozenset(AuditEvent.Action.values)

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
PATIENT_MODEL = "practice.patient"


@dataclass
class Event:
    """One event, as it will be inserted."""

    occurred_at: datetime
    schema_name: str
    action: str
    user_id: int | None = None
    client: str = ""
    patient_id: int | None = None
    # (app_label, model) of the row: its content type's id is looked up by the writer, in one
    # read per write (django-tenants clears Django's content-type cache on every request: a
    # lookup here would be a query on the request path).
    model: tuple[str, str] | None = None
    object_id: str = ""
    object_label: str = ""
    fields: list[str] = field(default_factory=list)
    ip: str | None = None
    request_id: str = ""
    method: str = ""
    path: str = ""


@dataclass
class RequestTrail:
    """The events of one request, written after its response (AuditMiddleware)."""

    request_id: str
    events: list[Event] = field(default_factory=list)


def request_id_for(request: HttpRequest) -> str:
    """The request's id: the `X-Request-ID` a proxy in front gave it, if it looks like one,
    otherwise a new one. Returned to the client in the same header."""
    given = request.META.get("HTTP_X_REQUEST_ID", "")
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def trail_of(request: Any) -> RequestTrail | None:
    """The trail AuditMiddleware put on the request (a DRF request reads its Django one's)."""
    django_request = getattr(request, "_request", request)
    return getattr(django_request, "audit_trail", None)


# How a row that does not carry `patient_id` reaches its patient: an authorization's line and
# a unit reservation (through their authorization).
_PATIENT_PATHS = {
    "authorizations.authorizationline": ("authorization",),
    "authorizations.unitreservation": ("line", "authorization"),
}


def patient_of(obj: Any) -> int | None:
    """The patient a model row belongs to: a patient is its own, a row carrying a
    `patient_id` belongs to that patient (or reaches it through `_PATIENT_PATHS`), anything
    else to none."""
    if not isinstance(obj, models.Model):
        return None
    label = obj._meta.label_lower
    if label == PATIENT_MODEL:
        return obj.pk
    for step in _PATIENT_PATHS.get(label, ()):
        obj = getattr(obj, step)
    return getattr(obj, "patient_id", None)


def _patient_id(patient: Any) -> int | None:
    if patient is None or isinstance(patient, int):
        return patient
    return patient.pk


def event_build(
    action: str,
    obj: Any = None,
    *,
    user: Any = None,
    client: str = "",
    patient: Any = None,
    fields: Iterable[str] = (),
    label: str = "",
    ip: str | None = None,
    request_id: str = "",
    method: str = "",
    path: str = "",
) -> Event:
    """The event of `action` on `obj` (a model row, or None with a `label`), in the current
    schema, now. `patient` (a patient or its id) defaults to the row's own (`patient_of`)."""
    if action not in ACTIONS:
        raise ValueError(f"Unknown audit action {action!r}.")
    model, object_id = None, ""
    if isinstance(obj, models.Model):
        model = (obj._meta.app_label, obj._meta.model_name or "")
        object_id = "" if obj.pk is None else str(obj.pk)
    user_id = user.pk if user is not None and getattr(user, "is_authenticated", False) else None
    return Event(
        occurred_at=timezone.now(),
        schema_name=tenant_connection.schema_name,
        action=action,
        user_id=user_id,
        client=client[:100],
        patient_id=_patient_id(patient) if patient is not None else patient_of(obj),
        model=model,
        object_id=object_id[:64],
        object_label=label[:200],
        fields=sorted(set(fields)),
        ip=ip,
        request_id=request_id,
        method=method[:8],
        path=path[:500],
    )


def record(
    request: Any,
    action: str,
    obj: Any = None,
    *,
    patient: Any = None,
    fields: Iterable[str] = (),
    label: str = "",
    client: str = "",
    user: Any = None,
) -> None:
    """Record that the request's user did `action` on `obj` (or on what `label` names),
    for `patient` (default: the row's own). Written after the response (AuditMiddleware);
    at once when the request did not pass through the middleware.

    `request` is Django's or DRF's request (DRF's knows the API's user). `user` names who
    acted when the request is not yet signed in as them (a sign-up acts as the account it
    creates)."""
    if not settings.AUDIT_ENABLED:
        return
    trail = trail_of(request)
    django_request = getattr(request, "_request", request)
    event = event_build(
        action,
        obj,
        user=user if user is not None else getattr(request, "user", None),
        # an API client's requests name it (accounts.auth puts its id on its principal)
        client=client or getattr(getattr(request, "user", None), "api_client_id", ""),
        patient=patient,
        fields=fields,
        label=label,
        ip=client_address(django_request),
        request_id=trail.request_id if trail is not None else "",
        method=django_request.method or "",
        path=django_request.path,
    )
    if trail is None:
        events_write([event])
    else:
        trail.events.append(event)


def record_now(
    action: str,
    obj: Any = None,
    *,
    user: Any = None,
    client: str = "",
    patient: Any = None,
    fields: Iterable[str] = (),
    label: str = "",
    request_id: str = "",
) -> None:
    """Record an event at once, in the current clinic's schema (and in the current
    transaction, if any: an export or erasure that rolls back leaves no event). For tasks and
    commands, which have no request; a task started by a request may pass its `request_id`."""
    if not settings.AUDIT_ENABLED:
        return
    events_write(
        [
            event_build(
                action,
                obj,
                user=user,
                client=client,
                patient=patient,
                fields=fields,
                label=label,
                request_id=request_id,
            )
        ]
    )


_COLUMNS = (
    "occurred_at",
    "schema_name",
    "action",
    "user_id",
    "client",
    "patient_id",
    "object_id",
    "object_label",
    "fields",
    "ip",
    "request_id",
    "method",
    "path",
)
# The most events one writer transaction carries (the thread is woken at once when as many
# wait): a transaction's size stays bounded however many events a flush gathers.
BATCH_EVENTS = 5000


def events_write(events: list[Event]) -> None:
    """Insert `events` with one COPY per schema, naming each event's schema explicitly (after
    the response the connection's search_path may already be another clinic's or public); each
    row's content type is looked up in one read of that schema's content types. A COPY streams
    its rows: neither the client's work per row nor the server's memory grows with a statement
    (1,000 events: 3.4 ms of client CPU, against 58 ms as a multi-row INSERT)."""
    by_schema: dict[str, list[Event]] = {}
    for event in events:
        by_schema.setdefault(event.schema_name, []).append(event)
    with connection.cursor() as cursor:
        for schema, of_schema in by_schema.items():
            table = sql.Identifier(schema)
            cursor.execute(
                sql.SQL("SELECT app_label, model, id FROM {}.django_content_type").format(table)
            )
            types = {(app_label, model): pk for app_label, model, pk in cursor.fetchall()}
            with cursor.cursor.copy(_copy_statement(schema)) as copy:
                for event in of_schema:
                    copy.write_row(
                        (
                            *(getattr(event, name) for name in _COLUMNS),
                            types.get(event.model) if event.model else None,
                        )
                    )


@functools.lru_cache(maxsize=512)
def _copy_statement(schema: str) -> sql.Composed:
    columns = sql.SQL(", ").join(map(sql.Identifier, (*_COLUMNS, "content_type_id")))
    return sql.SQL("COPY {}.audit_auditevent ({}) FROM STDIN").format(
        sql.Identifier(schema), columns
    )


def trail_flush(trail: RequestTrail) -> None:
    """Hand a request's events over after its response: to the process's batch writer
    (`AUDIT_FLUSH_SECONDS` > 0, the default), or written at once (0: tests, where a test's own
    transaction must see them). Never raises (the answer is sent)."""
    if not trail.events:
        return
    events, trail.events = trail.events, []
    if settings.AUDIT_FLUSH_SECONDS > 0:
        _writer().put(events)
    else:
        _events_write_logged(events, trail.request_id)


def _events_write_logged(events: list[Event], request_id: str = "") -> bool:
    """Write `events` in a transaction of their own (a savepoint inside a test's) whose COMMIT
    does not wait for the WAL flush: bookings keep their durable commits, and a flush stall
    never backs up behind audit writes. Logs every event it could not write."""
    try:
        _events_commit(events)
        return True
    except Exception:
        logger.exception(
            "Audit trail: %d event(s) of request %s NOT WRITTEN: %s",
            len(events),
            request_id or "(batch)",
            [(e.schema_name, e.action, e.model, e.request_id, e.object_id) for e in events],
        )
        return False


def _events_commit(events: list[Event]) -> None:
    """`events_write` in a transaction of its own whose COMMIT does not wait for the WAL flush."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        events_write(events)


class BatchWriter:
    """The process's audit writer: requests hand their events over (a queue put, no query)
    and one thread writes what gathered every `interval` seconds, in transactions of at most
    `batch` events (a COPY per clinic). A booking then pays for its event
    with a few microseconds instead of a transaction of its own after its answer (which held
    the worker thread and cost the bench's booking about a quarter of its CPU).

    Bounded whatever the traffic: once `batch` events wait, the thread is woken at once rather
    than at the end of its interval, and no statement or transaction grows with the load (a
    report naming thousands of patients at 20 req/s once made one INSERT of the whole
    interval's events, and PostgreSQL's backend was killed for memory).

    The trade-off, as with any buffered log: a process killed with SIGKILL loses the events of
    its last `interval` (a normal exit writes them: atexit). A write that fails (PostgreSQL
    restarting) is retried once on a new connection, then logged at ERROR with every event."""

    def __init__(self, interval: float, *, batch: int = BATCH_EVENTS):
        self.interval = interval
        self.batch = batch
        self.queue: queue.SimpleQueue[list[Event]] = queue.SimpleQueue()
        self.pending = 0  # events put and not yet taken
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.pid = os.getpid()
        self.thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self.thread.start()
        atexit.register(self.flush)

    def put(self, events: list[Event]) -> None:
        with self.lock:
            self.queue.put(events)
            self.pending += len(events)
            full = self.pending >= self.batch
        if full:
            self.wake.set()

    def _take(self) -> list[Event]:
        """Up to about `batch` queued events (a request's events stay together; a request of
        more than `batch` is split)."""
        events: list[Event] = []
        while len(events) < self.batch:
            try:
                handed = self.queue.get_nowait()
            except queue.Empty:
                break
            room = self.batch - len(events)
            if len(handed) > room:
                self.queue.put(handed[room:])  # the rest goes in the next transaction
                handed = handed[:room]
            events.extend(handed)
        with self.lock:
            self.pending -= len(events)
        return events

    def flush(self) -> int:
        """Write everything queued so far, `batch` events per transaction (the thread's loop,
        atexit, tests); the number of events written."""
        written = 0
        while events := self._take():
            written += self._commit(events)
        return written

    def _commit(self, events: list[Event]) -> int:
        for attempt in range(2):
            try:
                _events_commit(events)
                return len(events)
            except Exception:
                if attempt == 1:
                    logger.exception(
                        "Audit trail: %d event(s) NOT WRITTEN: %s",
                        len(events),
                        [(e.schema_name, e.action, e.model, e.request_id) for e in events],
                    )
            finally:
                # Back to the pool (or closed): the thread holds no connection between writes,
                # and a broken one is never reused.
                connection.close()
        return 0

    def _run(self) -> None:
        while True:
            self.wake.wait(self.interval)
            self.wake.clear()
            self.flush()


_batch_writer: BatchWriter | None = None
_batch_writer_lock = threading.Lock()


def _writer() -> BatchWriter:
    """This process's writer, started on first use (and again in a forked child: threads do
    not survive a fork)."""
    global _batch_writer
    with _batch_writer_lock:
        if _batch_writer is None or _batch_writer.pid != os.getpid():
            _batch_writer = BatchWriter(settings.AUDIT_FLUSH_SECONDS)
        return _batch_writer


def events_purge(*, retention_days: int | None = None) -> int:
    """Remove the current clinic's events older than the retention (AUDIT_RETENTION_DAYS),
    through PostgreSQL's `audit_events_purge`, the only DELETE its trigger lets through: the
    cutoff is computed there, from the database's clock, and never less than a year back.
    Returns the number of events removed."""
    days = settings.AUDIT_RETENTION_DAYS if retention_days is None else retention_days
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT public.audit_events_purge(%s, %s)",
            [tenant_connection.schema_name, days],
        )
        return cursor.fetchone()[0]

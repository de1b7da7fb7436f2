"""Sending a notification row: claim it, check it still holds, render, deliver, record.

A row is claimed with one conditional UPDATE (pending -> sending, a fresh claim id, one more
attempt), so of two tasks for one row (an overlapping beat, a redelivered task) one sends and
the other does nothing; the outcome is written only where the claim is still the row's. A
worker killed mid-send leaves the row `sending`: the sweep (`notifications_due`) puts a row
claimed longer ago than the lease back to pending and queues it again. A provider's refusal
puts the row back to pending and the task retries with backoff, until `NOTIFICATION_MAX_ATTEMPTS`
ends it `failed`. Email carries the row's uid as its Message-ID and SMS as the provider's
idempotency token, so a message the provider took just before a crash is recognisable there.
"""

import logging
import time
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

import usage
from clinic.tenancy import tenant_connection
from practice.formats import style_load
from practice.models import ClinicSettings
from scheduling.calendar import appointment_ics
from scheduling.models import Appointment
from tenants.selectors import schemas_where

from .links import action_links_create, action_links_create_many
from .models import Channel, ChannelOptOut, Kind, Notification
from .rendering import Rendered, render, template_for, visit_context
from .sms import SmsError, sms_backend
from .subjects import subject_for

log = logging.getLogger(__name__)
Status = Notification.Status


_ROWS = (
    "patient", "appointment__patient", "appointment__practitioner", "appointment__appointment_type",
    "appointment__location",
)  # fmt: skip


class DeliveryError(Exception):
    """The provider did not take the message; the row is pending again, the task retries."""


def notifications_queue(ids: list[int]) -> None:
    """Queue the rows' sends (call after commit, in the clinic's schema): one task per
    `NOTIFICATION_SEND_BATCH` rows (a booking's one or two notices: one task of their own), so
    a beat that finds thousands of reminders due queues tens of tasks, not thousands."""
    from .tasks import send_notification_task, send_notifications_task

    size = max(1, settings.NOTIFICATION_SEND_BATCH)
    for first in range(0, len(ids), size):
        chunk = list(ids[first : first + size])
        if len(chunk) == 1:
            send_notification_task.apply_async((chunk[0],), queue=settings.NOTIFICATIONS_QUEUE)
        else:
            send_notifications_task.apply_async((chunk,), queue=settings.NOTIFICATIONS_QUEUE)


def _skip_reason(
    row: Notification, opted_out: set[tuple[int, str]] | None = None, *, now: datetime
) -> str:
    """Why the row is not sent now ("" if it is): `opted_out`, a batch's (patient, channel)
    opt-outs read at once, else this row's looked up. A row about no visit asks its
    subject's registered check (a waitlist offer: still held)."""
    appointment = row.appointment
    subject = subject_for(row.kind)
    if subject is not None:
        if reason := subject.check(row, now):
            return reason
    elif appointment is None:
        return "The message is about nothing this clinic sends."
    elif row.kind != Kind.CANCELLATION:
        if appointment.status != Appointment.Status.BOOKED:
            return f"The visit is {appointment.get_status_display().lower()}."
        if appointment.start != row.start:
            return "The visit was moved; its new time has its own messages."
    if (
        (row.patient_id, row.channel) in opted_out
        if opted_out is not None
        else ChannelOptOut.objects.filter(patient_id=row.patient_id, channel=row.channel).exists()
    ):
        return f"The patient opted out of {row.get_channel_display()}."
    if not _recipient(row):
        missing = "email address" if row.channel == Channel.EMAIL else "mobile number"
        return f"The patient has no {missing}."
    return ""


def _recipient(row: Notification) -> str:
    patient = row.patient
    return patient.email if row.channel == Channel.EMAIL else patient.phone


def _finish(row: Notification, held: uuid.UUID, **fields) -> int:
    """Write the outcome if the row is still this send's (a sweep may have taken it back)."""
    return Notification.objects.filter(pk=row.pk, claim=held).update(**fields)


def _deliver(row: Notification, message: Rendered, mail=None) -> str:
    to = _recipient(row)
    if row.channel == Channel.SMS:
        try:
            return sms_backend().send(to=to, body=message.body, idempotency_key=str(row.uid))
        except SmsError as error:
            raise DeliveryError(str(error)) from error
    email = EmailMessage(
        subject=message.subject,
        body=message.body,
        to=[to],
        connection=mail,
        headers={"Message-ID": f"<{row.uid}@{tenant_connection.schema_name}.clinic>"},
    )
    if row.appointment is not None:
        email.attach("visit.ics", appointment_ics(row.appointment), "text/calendar")
    try:
        email.send()
    except OSError as error:
        raise DeliveryError(str(error)) from error
    return f"<{row.uid}@{tenant_connection.schema_name}.clinic>"


def notification_message(row: Notification, *, now: datetime) -> Rendered:
    """The row's words, with fresh signed links (not on a cancellation; a row about no visit
    gets its subject's own)."""
    subject = subject_for(row.kind)
    if subject is not None:
        return render(kind=row.kind, channel=row.channel, context=subject.context(row, now))
    appointment = row.appointment
    assert appointment is not None  # a row about no visit has its subject (_skip_reason)
    links = (
        {}
        if row.kind == Kind.CANCELLATION
        else action_links_create(appointment=appointment, now=now)
    )
    context = visit_context(appointment, start=row.start, links=links, locale=style_load().locale)
    return render(kind=row.kind, channel=row.channel, context=context)


def notification_send(*, notification_id: int, mail=None) -> str:
    """Send one row if it is pending; returns what happened ("sent", "skipped",
    "not-pending"). Raises DeliveryError (the row pending again) for the task to retry.
    `mail`: an open email connection to reuse (a batch's), else the backend's own."""
    now = timezone.now()
    claim = uuid.uuid4()
    claimed = Notification.objects.filter(pk=notification_id, status=Status.PENDING).update(
        status=Status.SENDING, claim=claim, claimed_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        return "not-pending"
    row = Notification.objects.select_related(*_ROWS).get(pk=notification_id)
    if reason := _skip_reason(row, now=now):
        _finish(row, claim, status=Status.SKIPPED, reason=reason, claim=None)
        return "skipped"
    with transaction.atomic():
        message = notification_message(row, now=now)
    if settings.NOTIFICATION_SEND_DELAY:  # tests: a window in which to kill the worker
        time.sleep(settings.NOTIFICATION_SEND_DELAY)
    try:
        provider_id = _deliver(row, message, mail)
    except DeliveryError as error:
        final = row.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS
        _finish(
            row, claim, status=Status.FAILED if final else Status.PENDING,
            reason=str(error)[:300], claim=None,
        )  # fmt: skip
        if final:
            log.warning("notification %s failed after %s attempts", row.pk, row.attempts)
            return "failed"
        raise
    if _finish(
        row, claim, status=Status.SENT, provider_id=provider_id[:200], recipient=_recipient(row),
        sent_at=timezone.now(), claim=None, reason="",
    ):  # fmt: skip
        usage.count(usage.NOTIFICATION_SENT, group=row.channel)
    return "sent"


# The outcome of each row of a batch, written in one statement where the claim is still its.
_FINISH = """
UPDATE notifications_notification n
   SET status = v.status, reason = v.reason, provider_id = v.provider_id,
       recipient = v.recipient, sent_at = v.sent_at, claim = NULL
  FROM (VALUES {values}) AS v(id, status, reason, provider_id, recipient, sent_at)
 WHERE n.id = v.id AND n.claim = %s
RETURNING n.id, n.channel, n.status
"""


def notifications_send_batch(
    *, notification_ids: list[int], mail=None
) -> tuple[dict[str, int], list[int]]:
    """Send several rows with a handful of statements instead of a handful per row: one
    conditional UPDATE claims every row still pending (one claim id for the batch), one SELECT
    reads them with their visits, one the opt-outs, one INSERT writes every message's signed
    links, and one UPDATE writes every outcome where the claim is still the batch's. Each row
    is rendered and delivered as `notification_send` does (the clinic's style and templates
    read once). A row the provider refused is pending again and returned under "retry", for
    the caller to queue on its own (with backoff). Returns counts by outcome, and those ids."""
    now = timezone.now()
    claim = uuid.uuid4()
    Notification.objects.filter(pk__in=notification_ids, status=Status.PENDING).update(
        status=Status.SENDING, claim=claim, claimed_at=now, attempts=F("attempts") + 1
    )
    rows = list(Notification.objects.filter(claim=claim).select_related(*_ROWS).order_by("pk"))
    outcomes: dict[str, int] = {"not-pending": len(set(notification_ids)) - len(rows)}
    if not rows:
        return outcomes, []
    opted_out = set(
        ChannelOptOut.objects.filter(patient_id__in={r.patient_id for r in rows}).values_list(
            "patient_id", "channel"
        )
    )
    results: list[tuple] = []
    to_send = []
    for row in rows:
        if reason := _skip_reason(row, opted_out, now=now):
            results.append((row.pk, Status.SKIPPED, reason, "", "", None))
        else:
            to_send.append(row)
    style = style_load()
    clinic_settings = ClinicSettings.objects.filter(id=1).first()
    templates: dict[tuple[str, str], tuple[str, str]] = {}
    with transaction.atomic():
        links = action_links_create_many(
            appointments=[
                r.appointment
                for r in to_send
                if r.appointment is not None and r.kind != Kind.CANCELLATION
            ],
            now=now,
        )
    retry: list[int] = []
    for row in to_send:
        key = (row.kind, row.channel)
        if key not in templates:
            templates[key] = template_for(row.kind, row.channel)
        subject = subject_for(row.kind)
        if subject is not None:
            context = subject.context(row, now)
        else:
            assert row.appointment is not None  # a row about no visit has its subject
            context = visit_context(
                row.appointment,
                start=row.start,
                links={} if row.kind == Kind.CANCELLATION else links[row.appointment.pk],
                locale=style.locale,
                clinic_settings=clinic_settings,
            )
        message = render(
            kind=row.kind, channel=row.channel, context=context, template=templates[key],
            style=style,
        )  # fmt: skip
        try:
            provider_id = _deliver(row, message, mail)
        except DeliveryError as error:
            final = row.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS
            status = Status.FAILED if final else Status.PENDING
            results.append((row.pk, status, str(error)[:300], "", "", None))
            if not final:
                retry.append(row.pk)
            continue
        results.append(
            (row.pk, Status.SENT, "", provider_id[:200], _recipient(row), timezone.now())
        )
    values = ", ".join(["(%s::bigint, %s, %s, %s, %s, %s::timestamptz)"] * len(results))
    with connection.cursor() as cursor:
        cursor.execute(_FINISH.format(values=values), [*(v for one in results for v in one), claim])
        written = cursor.fetchall()
    sent_by_channel: dict[str, int] = {}
    for _pk, channel, status in written:
        outcomes[status] = outcomes.get(status, 0) + 1
        if status == Status.SENT:
            sent_by_channel[channel] = sent_by_channel.get(channel, 0) + 1
    for channel, n in sent_by_channel.items():  # one count per channel, not one per message
        usage.count(usage.NOTIFICATION_SENT, n, group=channel)
    return outcomes, retry


def clinics_with_due_notifications(
    schemas: list[str], *, now: datetime | None = None, stuck_after: timedelta
) -> list[str]:
    """The schemas, of those given, where `notifications_due` has work (a pending row due and
    not queued within the lease, or one a crash left `sending`): one query per 200 clinics."""
    now = now or timezone.now()
    table = Notification._meta.db_table
    return schemas_where(
        schemas,
        table=table,
        sql=f"SELECT 1 FROM {{schema}}.{table} WHERE (status = %s AND due_at <= %s "  # noqa: S608
        "AND (queued_at IS NULL OR queued_at <= %s)) OR (status = %s AND claimed_at <= %s)",
        params=[Status.PENDING, now, now - stuck_after, Status.SENDING, now - stuck_after],
    )


def notifications_next_due(
    *, now: datetime | None = None, stuck_after: timedelta
) -> tuple[str, list]:
    """When `notifications_due` next has work in a clinic, as SQL and its parameters for
    tenants.services.work_due_settle: the earliest of a pending row's due time (the end of its
    lease when it was queued), and the end of a `sending` row's lease."""
    now = now or timezone.now()
    table = f"{{schema}}.{Notification._meta.db_table}"
    return (
        f"SELECT LEAST((SELECT min(GREATEST(due_at, queued_at + %s)) FROM {table} "  # noqa: S608
        f"WHERE status = %s AND due_at <= %s), (SELECT min(due_at) FROM {table} "
        f"WHERE status = %s AND due_at > %s), "
        f"(SELECT min(claimed_at) FROM {table} WHERE status = %s) + %s)",
        [stuck_after, Status.PENDING, now, Status.PENDING, now, Status.SENDING, stuck_after],
    )


# A page of the sweep: due pending rows not queued within the lease, marked queued in the
# statement that picks them; rows another sweep is marking are skipped, not waited for. The
# page is a MATERIALIZED CTE, taken once: as an `id IN (subquery)` the planner may put the
# subquery on the inner side of a nested loop and run it again per outer row, and each rerun
# (its first rows now locked and updated by this statement) reaches rows past the LIMIT.
_QUEUE_PAGE = """
WITH page AS MATERIALIZED (
    SELECT id FROM notifications_notification
     WHERE status = 'pending' AND due_at <= %(now)s AND id > %(after)s
       AND (queued_at IS NULL OR queued_at <= %(requeue)s)
     ORDER BY id LIMIT %(size)s FOR UPDATE SKIP LOCKED
)
UPDATE notifications_notification AS n SET queued_at = %(now)s
  FROM page WHERE n.id = page.id
RETURNING n.id
"""


def notifications_due(*, now: datetime | None = None, stuck_after: timedelta) -> list[int]:
    """The sweep: rows a crash left `sending` for longer than `stuck_after` are pending again,
    and every pending row that is due is queued, a page of `NOTIFICATION_SWEEP_BATCH` at a time
    (all of them: a clinic whose 48-hour reminders fall due in the same minute, tens of
    thousands, is not held to one page a minute). A row is marked `queued_at` as its page is
    taken, and a later sweep leaves it alone for `stuck_after` (two overlapping beats queue it
    once; a send the broker lost is queued again after the lease). Returns the ids queued."""
    now = now or timezone.now()
    Notification.objects.filter(status=Status.SENDING, claimed_at__lte=now - stuck_after).update(
        status=Status.PENDING, claim=None, queued_at=None
    )
    params = {
        "now": now, "requeue": now - stuck_after, "size": max(1, settings.NOTIFICATION_SWEEP_BATCH),
    }  # fmt: skip
    queued: list[int] = []
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_QUEUE_PAGE, {**params, "after": queued[-1] if queued else 0})
            page = sorted(pk for (pk,) in cursor.fetchall())
        if page:
            notifications_queue(page)
            queued += page
        if len(page) < params["size"]:
            return queued

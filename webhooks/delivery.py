"""Sending a delivery: claim it, check its turn and its address, sign, POST, record.

A delivery is claimed with one conditional UPDATE (pending -> sending, a fresh claim id, one
more attempt) that also checks its turn: no earlier delivery of the same subscription and
ordering key (an appointment, a claim) is still pending or sending, so a later event of a visit
is never sent before an earlier one succeeded or was given up. When a delivery ends, the next
one of its key is queued. The outcome is written only where the claim is still the row's. A
failed attempt (a non-2xx answer, a timeout, a refused address) puts the row back to pending
with `next_attempt_at` after an exponential backoff and queues it for then, until the next try
would fall past `WEBHOOK_RETRY_HOURS` after the event: then it is `failed`. A worker killed
mid-send leaves the row `sending`; the sweep (`deliveries_due`, the beat) puts a row claimed
longer ago than the lease back to pending and queues it again: at least once, and the event id
(in the body and `Clinic-Event-Id`) lets the receiver drop a second copy.

Every failed attempt adds one to the subscription's `consecutive_failures` (a success sets it
to 0); at `WEBHOOK_DISABLE_AFTER_FAILURES` the subscription is disabled by one conditional
UPDATE and the clinic's admins are emailed once.
"""

import logging
import time
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import connection
from django.db.models import F
from django.utils import timezone

import usage
from clinic.permissions import CLINIC_ADMIN
from clinic.tenancy import tenant_connection
from tenants.selectors import schemas_where

from .addresses import AddressRefused, Target, target_resolve
from .models import WebhookDelivery, WebhookSubscription
from .signing import HEADER, signature_header

log = logging.getLogger(__name__)
Status = WebhookDelivery.Status
USER_AGENT = "Clinic-Webhooks/1"

_TABLE = WebhookDelivery._meta.db_table
# Its turn: nothing earlier of its subscription and key still open (the partial index
# webhook_delivery_open_in_order answers it).
_ITS_TURN = f"""
    NOT EXISTS (
      SELECT 1 FROM {_TABLE} e
       WHERE e.subscription_id = d.subscription_id AND d.ordering_key <> ''
         AND e.ordering_key = d.ordering_key AND e.id < d.id
         AND e.status IN ('pending', 'sending'))
"""  # noqa: S608
_CLAIM = f"""
  UPDATE {_TABLE} d
     SET status = 'sending', claim = %(claim)s, claimed_at = %(now)s, attempts = d.attempts + 1
   WHERE d.id = %(id)s AND d.status = 'pending' AND d.next_attempt_at <= %(now)s AND {_ITS_TURN}
  RETURNING d.id
"""  # noqa: S608
_DUE = f"""
  SELECT d.id FROM {_TABLE} d
   WHERE d.status = 'pending' AND d.next_attempt_at <= %(now)s AND {_ITS_TURN}
   ORDER BY d.next_attempt_at, d.id
   LIMIT %(limit)s
"""  # noqa: S608


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: the base doubled each time, at
    most `WEBHOOK_RETRY_MAX_SECONDS` (30 s, 1 min, 2 min ... 1 h, then hourly by default)."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS
    return float(min(base * 2 ** max(attempts - 1, 0), settings.WEBHOOK_RETRY_MAX_SECONDS))


def retry_at(*, created_at: datetime, attempts: int, now: datetime) -> datetime | None:
    """When to try again after `attempts` failed tries, or None: the next try would fall
    past `WEBHOOK_RETRY_HOURS` after the delivery was written (give up)."""
    at = now + timedelta(seconds=retry_delay(attempts))
    if at > created_at + timedelta(hours=settings.WEBHOOK_RETRY_HOURS):
        return None
    return at


def deliveries_queue(ids: list[int], *, countdown: float = 0.0) -> None:
    """Queue one send task per delivery (after commit, in the clinic's schema)."""
    from .tasks import send_webhook_task

    for pk in ids:
        send_webhook_task.apply_async(
            (pk,), queue=settings.WEBHOOKS_QUEUE, countdown=max(countdown, 0.0) or None
        )


def _claim(delivery_id: int, claim: uuid.UUID, now: datetime) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM, {"id": delivery_id, "claim": claim, "now": now})
        return cursor.fetchone() is not None


def _finish(row: WebhookDelivery, held: uuid.UUID, **fields) -> bool:
    """Write the outcome if the row is still this send's (a sweep may have taken it back)."""
    return bool(WebhookDelivery.objects.filter(pk=row.pk, claim=held).update(claim=None, **fields))


def _queue_next_in_order(row: WebhookDelivery) -> None:
    """The row ended: the next open delivery of its subscription and key may go now."""
    if not row.ordering_key:
        return
    following = (
        WebhookDelivery.objects.filter(
            subscription_id=row.subscription_id,
            ordering_key=row.ordering_key,
            status=Status.PENDING,
            pk__gt=row.pk,
        )
        .order_by("pk")
        .values_list("pk", "next_attempt_at")
        .first()
    )
    if following:
        pk, at = following
        wait = (at - timezone.now()).total_seconds() if at else 0.0
        deliveries_queue([pk], countdown=wait)


def _post(target: Target, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST to the address checked (not a second lookup of the name), with the URL's host in
    `Host` and, over TLS, in SNI and the certificate check. Redirects are not followed."""
    url, extensions = target.url, {}
    if target.address is not None:
        parts = urlsplit(target.url)
        address = f"[{target.address}]" if ":" in target.address else target.address
        url = urlunsplit(parts._replace(netloc=f"{address}:{target.port}"))
        headers = {**headers, "Host": parts.netloc.rpartition("@")[2]}
        if parts.scheme == "https":
            extensions["sni_hostname"] = target.host
    timeout = httpx.Timeout(
        settings.WEBHOOK_TIMEOUT_SECONDS, connect=settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS
    )
    with (
        httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
        client.stream("POST", url, content=body, headers=headers, extensions=extensions) as answer,
    ):
        return answer  # the status is all we keep; the receiver's body is never read


def _failed_attempt(subscription_id: int, now: datetime) -> None:
    """One more failure in a row; at the limit the subscription is disabled (once) and the
    clinic's admins are told."""
    WebhookSubscription.objects.filter(pk=subscription_id).update(
        consecutive_failures=F("consecutive_failures") + 1
    )
    limit = settings.WEBHOOK_DISABLE_AFTER_FAILURES
    reason = f"Disabled after {limit} failed deliveries in a row."
    disabled = WebhookSubscription.objects.filter(
        pk=subscription_id, is_active=True, consecutive_failures__gte=limit
    ).update(is_active=False, disabled_at=now, disabled_reason=reason)
    if disabled:
        subscription = WebhookSubscription.objects.get(pk=subscription_id)
        log.warning("webhook subscription %s disabled: %s", subscription_id, reason)
        subscription_disabled_notice(subscription)


def subscription_disabled_notice(subscription: WebhookSubscription) -> int:
    """Email the clinic's admins that `subscription` was disabled. Returns the messages sent."""
    recipients = list(
        get_user_model()
        .objects.filter(groups__name=CLINIC_ADMIN, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    if not recipients:
        return 0
    clinic = getattr(tenant_connection.tenant, "name", "") or tenant_connection.schema_name
    return send_mail(
        subject=f"{clinic}: a webhook was disabled",
        message=(
            f"The webhook to {subscription.url} was disabled: {subscription.disabled_reason}\n\n"
            "Its last deliveries are in the delivery log (admin: Webhooks). Once the receiver "
            "answers again, turn the subscription back on and replay what it missed."
        ),
        from_email=None,
        recipient_list=recipients,
    )


def delivery_send(*, delivery_id: int) -> str:
    """Send one delivery if it is pending, due and its turn; returns what happened
    ("succeeded", "retrying", "failed", "disabled", "not-due", "not-pending")."""
    now = timezone.now()
    claim = uuid.uuid4()
    if not _claim(delivery_id, claim, now):
        state = WebhookDelivery.objects.filter(pk=delivery_id).values_list(
            "status", "next_attempt_at"
        )
        found = state.first()
        if found and found[0] == Status.PENDING and found[1] and found[1] > now:
            deliveries_queue([delivery_id], countdown=(found[1] - now).total_seconds())
            return "not-due"
        return "not-pending"  # sent, given up, another worker's, or waiting its turn
    row = WebhookDelivery.objects.select_related("subscription", "event").get(pk=delivery_id)
    subscription = row.subscription
    if not subscription.is_active:
        if _finish(row, claim, status=Status.FAILED, next_attempt_at=None,
                   last_error="The subscription is disabled."):  # fmt: skip
            _queue_next_in_order(row)
        return "disabled"
    body = row.event.body.encode()
    error, code, latency = "", None, None
    try:
        target = target_resolve(subscription.url)
        if settings.WEBHOOK_SEND_DELAY:  # tests: a window in which to kill the worker
            time.sleep(settings.WEBHOOK_SEND_DELAY)
        timestamp = int(timezone.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Clinic-Event-Id": str(row.event_id),
            "Clinic-Event-Type": row.event.type,
            "Clinic-Delivery-Attempt": str(row.attempts),
            HEADER: signature_header(secret=subscription.secret, timestamp=timestamp, body=body),
        }
        started = time.monotonic()
        try:
            code = _post(target, body, headers).status_code
            if not 200 <= code < 300:
                error = f"The receiver answered {code}."
        except httpx.HTTPError as failure:
            error = (
                f"{type(failure).__name__}: {failure}" if str(failure) else type(failure).__name__
            )
        latency = round((time.monotonic() - started) * 1000)
    except AddressRefused as refused:
        error = str(refused)
    done = timezone.now()
    if not error:
        if _finish(row, claim, status=Status.SUCCEEDED, response_code=code, latency_ms=latency,
                   delivered_at=done, next_attempt_at=None, last_error=""):  # fmt: skip
            WebhookSubscription.objects.filter(pk=subscription.pk).exclude(
                consecutive_failures=0
            ).update(consecutive_failures=0)
            _queue_next_in_order(row)
            usage.count(usage.WEBHOOK_DELIVERED, group=row.event.type)
        return "succeeded"
    again = retry_at(created_at=row.created_at, attempts=row.attempts, now=done)
    written = _finish(
        row, claim, status=Status.PENDING if again else Status.FAILED, next_attempt_at=again,
        response_code=code, latency_ms=latency, last_error=error[:300],
    )  # fmt: skip
    if not written:
        return "not-pending"
    _failed_attempt(subscription.pk, done)
    if again is None:
        log.warning("webhook delivery %s given up after %s attempts", row.pk, row.attempts)
        _queue_next_in_order(row)
        return "failed"
    deliveries_queue([row.pk], countdown=(again - done).total_seconds())
    return "retrying"


def clinics_with_due_deliveries(
    schemas: list[str], *, now: datetime | None = None, stuck_after: timedelta
) -> list[str]:
    """The schemas, of those given, where `deliveries_due` has work (a delivery pending and
    due, or one a crash left `sending`): one query per 200 clinics, so the beat's minute
    costs milliseconds, not a visit to every clinic."""
    now = now or timezone.now()
    return schemas_where(
        schemas,
        table=_TABLE,
        sql=f"SELECT 1 FROM {{schema}}.{_TABLE} WHERE (status = 'pending' AND "  # noqa: S608
        "next_attempt_at <= %s) OR (status = 'sending' AND claimed_at <= %s)",
        params=[now, now - stuck_after],
    )


def deliveries_next_due(*, stuck_after: timedelta) -> tuple[str, list]:
    """When `deliveries_due` next has work in a clinic, as SQL and its parameters for
    tenants.services.work_due_settle: a pending delivery's next attempt, or the end of a
    `sending` one's lease."""
    return (
        f"SELECT LEAST((SELECT min(next_attempt_at) FROM {{schema}}.{_TABLE} "  # noqa: S608
        f"WHERE status = %s), (SELECT min(claimed_at) FROM {{schema}}.{_TABLE} "
        "WHERE status = %s) + %s)",
        [Status.PENDING, Status.SENDING, stuck_after],
    )


def deliveries_due(*, now: datetime | None = None, stuck_after: timedelta) -> list[int]:
    """The sweep: rows a crash left `sending` longer than `stuck_after` are pending again, and
    every pending row that is due and has its turn is queued. Returns the ids queued."""
    now = now or timezone.now()
    WebhookDelivery.objects.filter(status=Status.SENDING, claimed_at__lte=now - stuck_after).update(
        status=Status.PENDING, claim=None, next_attempt_at=F("claimed_at")
    )
    with connection.cursor() as cursor:
        cursor.execute(_DUE, {"now": now, "limit": settings.WEBHOOK_SWEEP_BATCH})
        ids = [pk for (pk,) in cursor.fetchall()]
    deliveries_queue(ids)
    return ids

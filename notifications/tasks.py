"""Notification tasks: send one row (idempotent on its id: the row is claimed), and the beat
that plans reminders and queues what is due or was left pending by a crash."""

from datetime import timedelta

import redis
from django.conf import settings
from django.core.mail import get_connection
from django.db import InterfaceError, OperationalError
from django_tenants.utils import tenant_context
from kombu.exceptions import OperationalError as BrokerError

from clinic import metrics
from clinic.celery import app
from tenants.selectors import clinic_list

from .delivery import (
    DeliveryError,
    notification_send,
    notifications_due,
    notifications_send_batch,
)
from .planning import reminders_plan

TRANSIENT = (OperationalError, InterfaceError, BrokerError, redis.RedisError)


@app.task(
    name="notifications.send",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(DeliveryError, *TRANSIENT),
    retry_backoff=2,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
)
def send_notification_task(notification_id: int) -> str:
    """Send one notification row in its clinic (the row is claimed: a second run is a no-op)."""
    outcome = notification_send(notification_id=notification_id)
    metrics.notification_outcomes(outcome)
    return outcome


@app.task(
    name="notifications.send_batch",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    max_retries=8,
)
def send_notifications_task(notification_ids: list[int]) -> dict[str, int]:
    """Send a batch of rows (the beat's) through one email connection with a handful of
    statements (`notifications_send_batch`). Rows are claimed as one by one, so a batch
    redelivered after a crash sends only what is still pending (the sweep takes back what a
    killed worker left `sending`); a row the provider refused goes to a task of its own,
    which retries with backoff."""
    with get_connection() as mail:
        outcomes, retry = notifications_send_batch(notification_ids=notification_ids, mail=mail)
    metrics.notification_outcomes(outcomes)
    for pk in retry:
        send_notification_task.apply_async((pk,), countdown=2, queue=settings.NOTIFICATIONS_QUEUE)
    return outcomes


@app.task(name="notifications.send_due_everywhere", public_ok=True, ignore_result=True)
def send_due_notifications_task() -> int:
    """Beat: in every active clinic, plan missing reminders, put back rows a crashed worker
    left `sending`, and queue every pending row that is due. Returns the rows queued."""
    stuck = timedelta(seconds=settings.NOTIFICATION_LEASE_SECONDS)
    queued = 0
    for clinic in clinic_list():
        if not clinic.is_active or clinic.schema_name == "public":
            continue
        with tenant_context(clinic):
            reminders_plan()
            queued += len(notifications_due(stuck_after=stuck))
    return queued

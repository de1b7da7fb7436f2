"""Notification tasks: send one row (idempotent on its id: the row is claimed), the beat that
queues what is due or was left pending by a crash, and the planning of reminders when a rule
is saved (and hourly, as a safety net)."""

from datetime import timedelta

import redis
from django.conf import settings
from django.core.mail import get_connection
from django.db import InterfaceError, OperationalError, transaction
from django_tenants.utils import tenant_context
from kombu.exceptions import OperationalError as BrokerError

from clinic import metrics
from clinic.celery import app
from tenants.selectors import clinic_list, clinics_with_work_due
from tenants.services import work_due_settle

from .delivery import (
    DeliveryError,
    clinics_with_due_notifications,
    notification_send,
    notifications_due,
    notifications_next_due,
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
    """Beat (every minute): in the clinics that have rows to send, put back rows a crashed
    worker left `sending` and queue every pending row that is due. The clinics are those due
    in tenants.models.WorkDue (one indexed query), of which one query per 200 finds those with
    rows to send; each is settled afterwards. Returns the rows queued."""
    stuck = timedelta(seconds=settings.NOTIFICATION_LEASE_SECONDS)
    clinics = {c.schema_name: c for c in clinics_with_work_due("notifications")}  # models.WorkDue
    due = list(clinics)
    queued = 0
    for schema in clinics_with_due_notifications(due, stuck_after=stuck):
        with tenant_context(clinics[schema]):
            queued += len(notifications_due(stuck_after=stuck))
    sql, params = notifications_next_due(stuck_after=stuck)
    work_due_settle("notifications", due, sql=sql, params=params)
    return queued


@app.task(name="notifications.plan_reminders", acks_late=True, autoretry_for=TRANSIENT,
          max_retries=5)  # fmt: skip
def plan_reminders_task() -> int:
    """In the clinic that queued it (a reminder rule saved): plan the reminders its visits to
    come lack under the rules now in force. Returns the rows planned."""
    return reminders_plan()


@app.task(name="notifications.plan_everywhere", public_ok=True, ignore_result=True)
def plan_reminders_everywhere_task() -> int:
    """Beat (hourly), a safety net: plan missing reminders in every active clinic. A booking
    plans its own, and saving a rule queues `plan_reminders_task` for its clinic."""
    planned = 0
    for clinic in clinic_list():
        if clinic.is_active and not clinic.is_platform:
            with tenant_context(clinic):
                planned += reminders_plan()
    return planned


def on_rule_saved(sender, instance, **kwargs) -> None:
    """A reminder rule added or changed: its clinic's visits to come get their reminders
    (after commit, by a task, never in the request)."""
    transaction.on_commit(
        lambda: plan_reminders_task.apply_async(queue=settings.NOTIFICATIONS_QUEUE), robust=True
    )

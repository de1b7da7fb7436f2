"""Webhook tasks: send one delivery (idempotent on its id: the row is claimed), and the beat
that queues what is due or was left `sending` by a crash."""

from datetime import timedelta

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django_tenants.utils import tenant_context
from kombu.exceptions import OperationalError as BrokerError

from clinic.celery import app
from tenants.selectors import clinics_with_work_due
from tenants.services import work_due_settle

from .delivery import (
    clinics_with_due_deliveries,
    deliveries_due,
    deliveries_next_due,
    delivery_send,
)

TRANSIENT = (OperationalError, InterfaceError, BrokerError, redis.RedisError)


@app.task(
    name="webhooks.send",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
)
def send_webhook_task(delivery_id: int) -> str:
    """Send one delivery in its clinic (claimed: a second run is a no-op). A receiver's
    failure is not an exception here: the service schedules the next try itself."""
    return delivery_send(delivery_id=delivery_id)


@app.task(name="webhooks.send_due_everywhere", public_ok=True, ignore_result=True)
def send_due_webhooks_task() -> int:
    """Beat: in every active clinic, put back deliveries a crashed worker left `sending` and
    queue every pending one that is due and has its turn. Only the clinics the index of work
    due names are asked (tenants.models.WorkDue), and settled afterwards. Returns the
    deliveries queued."""
    stuck = timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    clinics = {c.schema_name: c for c in clinics_with_work_due("webhooks")}  # models.WorkDue
    due = list(clinics)
    queued = 0
    for schema in clinics_with_due_deliveries(due, stuck_after=stuck):
        with tenant_context(clinics[schema]):
            queued += len(deliveries_due(stuck_after=stuck))
    sql, params = deliveries_next_due(stuck_after=stuck)
    work_due_settle("webhooks", due, sql=sql, params=params)
    return queued

"""Waitlist tasks: offer a freed slot, offer the free slots of time new hours or a removed time
off opened, expire a hold at its time, and the beat's sweep of holds
a crashed worker left past their expiry (an offer's message is a notification row, sent by
notifications' tasks). Each is safe to run twice (an offer is made under row locks and
constraints; expiry is a conditional change)."""

from datetime import datetime

import redis
from django.db import InterfaceError, OperationalError
from django_tenants.utils import tenant_context
from kombu.exceptions import OperationalError as BrokerError

from clinic.celery import app
from tenants.selectors import clinics_with_work_due
from tenants.services import work_due_settle

from . import services

TRANSIENT = (OperationalError, InterfaceError, BrokerError, redis.RedisError)
# Offering tasks: acknowledged after they run, again after a lost worker, retried on a
# transient database or broker error (they are idempotent: the holds' constraints decide).
ROW_TASK = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": TRANSIENT,
    "retry_backoff": 1,
    "max_retries": 5,
}


@app.task(name="waitlist.offer_slot", **ROW_TASK)
def offer_slot_task(slot_args: list) -> int | None:
    """Offer a freed slot to the waitlist; returns the offer's id, or None."""
    offer = services.slot_offer(slot=services.FreedSlot.from_task_args(slot_args))
    return offer.pk if offer else None


@app.task(name="waitlist.offer_opened_time", **ROW_TASK)
def offer_opened_time_task(practitioner_id: int, spans: list) -> list[int]:
    """Offer the free slots of time that opened for a practitioner (hours added or widened,
    time off removed or shortened: `spans`, ISO 8601 pairs) to the waitlist; returns the
    offers' ids."""
    offers = services.opened_time_offer(
        practitioner_id=practitioner_id,
        spans=[(datetime.fromisoformat(lo), datetime.fromisoformat(hi)) for lo, hi in spans],
    )
    return [offer.pk for offer in offers]


@app.task(name="waitlist.expire_offer", acks_late=True, autoretry_for=TRANSIENT, max_retries=5)
def expire_offer_task(offer_id: int) -> bool:
    """At the hold's expiry: end it and pass the slot on (nothing if it was decided)."""
    return services.offer_expire(offer_id=offer_id)


@app.task(name="waitlist.sweep_everywhere", public_ok=True, ignore_result=True)
def sweep_offers_task() -> int:
    """Beat: in every active clinic, expire holds past their time whose task a crashed
    worker lost. Only the clinics the index of work due names are asked
    (tenants.models.WorkDue), and settled afterwards. Returns how many it expired."""
    clinics = {c.schema_name: c for c in clinics_with_work_due("waitlist_offers")}  # models.WorkDue
    due = list(clinics)
    expired = 0
    for schema in services.clinics_with_offers_due(due):
        with tenant_context(clinics[schema]):
            for offer_id in services.offers_due():
                expired += services.offer_expire(offer_id=offer_id)
    sql, params = services.offers_next_due()
    work_due_settle("waitlist_offers", due, sql=sql, params=params)
    return expired

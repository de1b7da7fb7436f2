"""Writes of the webhooks app: emit an event (rows first), keep subscriptions, replay a delivery.

`event_emit` runs inside the transaction of the change it reports (a receiver of a domain app's
signal, or an app above webhooks calling it): the event and its deliveries commit or roll back
with the change, and are queued by id after commit (`transaction.on_commit`). A clinic without
a subscription to the type pays one indexed read and writes nothing.
"""

import json
from collections.abc import Callable, Iterable
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from clinic.errors import ApplicationError

from .addresses import AddressRefused, target_resolve
from .delivery import deliveries_queue
from .events import EVENT_TYPES
from .models import WebhookDelivery, WebhookEvent, WebhookSubscription
from .signing import secret_generate

Status = WebhookDelivery.Status


class WebhookUrlRefusedError(ApplicationError):
    status = 400
    code = "webhook-url-refused"
    title = "This URL cannot receive webhooks."

    def __init__(self, detail: str):
        super().__init__(detail, extra={"errors": {"url": [detail]}})


class UnknownEventTypeError(ValueError):
    """A programming error: an app emitted a type that is not in `events.EVENT_TYPES`."""


def event_body(event: WebhookEvent) -> str:
    """The JSON every delivery of `event` sends: id, type, created (ISO 8601) and data."""
    return json.dumps(
        {
            "id": str(event.id),
            "type": event.type,
            "created": event.created_at.isoformat(),
            "data": event.data,
        },
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
        ensure_ascii=False,
    )


Item = tuple[dict[str, Any], str]  # (data, ordering key)


def _subscribers(type: str) -> list[int]:
    if type not in EVENT_TYPES:
        raise UnknownEventTypeError(type)
    return list(
        WebhookSubscription.objects.filter(is_active=True, events__contains=[type]).values_list(
            "pk", flat=True
        )
    )


def events_emit(*, type: str, items: Callable[[], Iterable[Item]]) -> list[WebhookEvent]:
    """Write one event `type` per item that `items()` yields (its data: the resource as the
    API serializes it; its ordering key: "claim:7"), and one pending delivery per event and
    active subscription to the type, in the caller's transaction (or one of its own); queue
    them after commit. `items` is called only when some subscription wants the type, so a
    clinic without one pays one indexed read and no serializing. Events of one ordering key
    reach each subscription in the order written."""
    subscriptions = _subscribers(type)
    if not subscriptions:
        return []
    now = timezone.now()
    events = []
    for data, ordering_key in items():
        # Through the encoder once, so what is stored is what is sent (dates as ISO strings).
        plain = json.loads(json.dumps(data, cls=DjangoJSONEncoder))
        event = WebhookEvent(type=type, created_at=now, data=plain, ordering_key=ordering_key)
        event.body = event_body(event)
        events.append(event)
    if not events:
        return []
    with transaction.atomic(savepoint=False):
        WebhookEvent.objects.bulk_create(events)
        deliveries = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(
                subscription_id=pk, event=event, ordering_key=event.ordering_key,
                created_at=now, next_attempt_at=now,
            )
            for event in events
            for pk in subscriptions
        )  # fmt: skip
        ids = [delivery.pk for delivery in deliveries]
        transaction.on_commit(lambda: deliveries_queue(ids), robust=True)
    return events


def event_emit(*, type: str, data: dict[str, Any], ordering_key: str = "") -> WebhookEvent | None:
    """One event (`events_emit` with one item): for an app above webhooks (a waitlist's
    `waitlist.offer_*`) or a receiver. Returns the event, or None when no subscription wants
    it."""
    events = events_emit(type=type, items=lambda: [(data, ordering_key)])
    return events[0] if events else None


def _url_check(url: str) -> None:
    try:
        target_resolve(url)
    except AddressRefused as refused:
        raise WebhookUrlRefusedError(str(refused)) from refused


@transaction.atomic
def subscription_create(
    *, url: str, events: list[str], description: str = "", secret: str = "", is_active=True
) -> WebhookSubscription:
    """A subscription to `events` at `url` (refused unless it resolves to public addresses),
    signed with `secret` or a new one (returned once, on the object)."""
    _url_check(url)
    return WebhookSubscription.objects.create(
        url=url, events=sorted(set(events)), description=description,
        secret=secret or secret_generate(), is_active=is_active,
    )  # fmt: skip


@transaction.atomic
def subscription_update(*, subscription: WebhookSubscription, **fields) -> WebhookSubscription:
    """Change the URL (checked again), events, description or `is_active`; turning a disabled
    subscription back on clears its failure count."""
    locked = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
    if "url" in fields and fields["url"] != locked.url:
        _url_check(fields["url"])
    if "events" in fields:
        fields["events"] = sorted(set(fields["events"]))
    if fields.get("is_active") and not locked.is_active:
        fields.update(consecutive_failures=0, disabled_at=None, disabled_reason="")
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.save()
    return locked


def subscription_delete(*, subscription: WebhookSubscription) -> None:
    """Delete the subscription and its delivery log (events other subscriptions got stay)."""
    subscription.delete()


@transaction.atomic
def delivery_replay(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send `delivery`'s event to its subscription again (same body, same event id), as a new
    delivery in the log, queued after commit. It waits its turn behind open deliveries of the
    same key, like any other."""
    now = timezone.now()
    replay = WebhookDelivery.objects.create(
        subscription_id=delivery.subscription_id, event_id=delivery.event_id,
        ordering_key=delivery.ordering_key, replay_of=delivery.replay_of or delivery,
        created_at=now, next_attempt_at=now,
    )  # fmt: skip
    transaction.on_commit(lambda: deliveries_queue([replay.pk]), robust=True)
    return replay

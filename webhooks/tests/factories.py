"""Builders for the webhook tests (run inside a clinic schema)."""

from notifications.tests.factories import book, visit_world
from webhooks.events import EVENT_TYPES
from webhooks.models import WebhookSubscription
from webhooks.services import subscription_create

from .receiver import Receiver

__all__ = ["book", "subscribe", "visit_world"]


def subscribe(receiver: Receiver, path: str, events=EVENT_TYPES, **kwargs) -> WebhookSubscription:
    """A subscription of the current clinic to `events` at the receiver's `path`, whose secret
    the receiver checks."""
    subscription = subscription_create(url=receiver.url(path), events=list(events), **kwargs)
    receiver.secrets[path] = subscription.secret
    return subscription

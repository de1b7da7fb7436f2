"""Reads shared by the webhooks API and admin."""

from django.db.models import QuerySet

from .models import WebhookDelivery, WebhookSubscription


def subscription_list() -> QuerySet[WebhookSubscription]:
    return WebhookSubscription.objects.order_by("pk")


def delivery_list(*, subscription_id: int) -> QuerySet[WebhookDelivery]:
    """A subscription's delivery log, newest first, with each delivery's event."""
    return (
        WebhookDelivery.objects.filter(subscription_id=subscription_id)
        .select_related("event")
        .order_by("-pk")
    )

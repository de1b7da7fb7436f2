"""Webhooks: a clinic's subscriptions, the events it emitted and the log of their deliveries.

An event and its deliveries (one per active subscription that asked for its type) are written
in the transaction of the change they report, then sent after commit by a task that claims the
delivery (pending -> sending, a conditional UPDATE), so two workers never send one row at once.
The body is frozen in the event (`body`): every attempt and every replay signs the same bytes,
with the same event id, so a receiver deduplicates on it.
"""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from clinic.crypto import EncryptedTextField

from .events import EVENT_TYPES


class WebhookSubscription(models.Model):
    """Where a clinic wants its events POSTed, which ones, and the secret that signs them."""

    url = models.URLField(max_length=500)
    events = ArrayField(
        models.CharField(max_length=60, choices=[(name, name) for name in EVENT_TYPES]),
        help_text="The event types sent to this URL.",
    )
    description = models.CharField(max_length=200, blank=True)
    # The HMAC key: needed in clear to sign, shown once when made (or supplied by the clinic),
    # stored encrypted (clinic.crypto).
    secret = EncryptedTextField(editable=False)
    is_active = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=300, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("pk",)
        constraints = (
            models.CheckConstraint(
                condition=Q(events__len__gt=0) & Q(events__contained_by=list(EVENT_TYPES)),
                name="webhook_subscription_known_events",
            ),
            models.CheckConstraint(condition=~Q(secret=""), name="webhook_subscription_has_secret"),
        )

    def __str__(self) -> str:
        return self.url


class WebhookEvent(models.Model):
    """One thing that happened, as sent: `body` is the exact JSON every delivery signs."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=60)
    created_at = models.DateTimeField()
    data = models.JSONField()
    # Events of one key (an appointment, a claim) reach a subscription in the order written.
    ordering_key = models.CharField(max_length=80, blank=True)
    body = models.TextField()

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed (gave up)"

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    ordering_key = models.CharField(max_length=80, blank=True)
    replay_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="replays"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claim = models.UUIDField(null=True, blank=True, editable=False)
    claimed_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-pk",)
        verbose_name_plural = "webhook deliveries"
        permissions = (("replay_webhookdelivery", "Can replay a webhook delivery"),)
        indexes = (
            models.Index(
                fields=("subscription", "ordering_key", "id"),
                name="webhook_delivery_open_in_order",
                condition=Q(status__in=("pending", "sending")),
            ),
            models.Index(
                fields=("next_attempt_at",),
                name="webhook_delivery_pending_due",
                condition=Q(status__in=("pending", "sending")),
            ),
        )
        constraints = (
            # A first delivery per (subscription, event); replays are rows of their own.
            models.UniqueConstraint(
                fields=("subscription", "event"),
                condition=Q(replay_of__isnull=True),
                name="webhook_delivery_once_per_subscription",
            ),
            models.CheckConstraint(
                condition=~Q(status="sending") | Q(claim__isnull=False),
                name="webhook_delivery_sending_is_claimed",
            ),
            models.CheckConstraint(
                condition=~Q(status="pending") | Q(next_attempt_at__isnull=False),
                name="webhook_delivery_pending_has_next_attempt",
            ),
        )

    def __str__(self) -> str:
        return f"{self.event.type} to {self.subscription} ({self.status})"

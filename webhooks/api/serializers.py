from rest_framework import serializers

from ..events import EVENT_TYPES
from ..models import WebhookDelivery, WebhookSubscription


class SubscriptionSerializer(serializers.ModelSerializer):
    """A subscription as read: never its secret (shown once, when made)."""

    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES), min_length=1, max_length=100
    )
    url = serializers.URLField(max_length=500)

    class Meta:
        model = WebhookSubscription
        fields: tuple[str, ...] = (
            "id", "url", "events", "description", "is_active", "consecutive_failures",
            "disabled_at", "disabled_reason", "created_at",
        )  # fmt: skip
        read_only_fields = (
            "id", "consecutive_failures", "disabled_at", "disabled_reason", "created_at",
        )  # fmt: skip


class SubscriptionCreateSerializer(SubscriptionSerializer):
    """`secret`: your own (16 to 200 characters), or left out for one made here. The answer
    carries it this once."""

    secret = serializers.CharField(min_length=16, max_length=200, required=False, write_only=True)

    class Meta(SubscriptionSerializer.Meta):
        fields = (*SubscriptionSerializer.Meta.fields, "secret")


class SubscriptionCreatedSerializer(SubscriptionSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="The signing secret: shown this once, keep it."
    )

    class Meta(SubscriptionSerializer.Meta):
        fields = (*SubscriptionSerializer.Meta.fields, "secret")


class DeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.UUIDField(read_only=True)
    event = serializers.CharField(source="event.type", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = (
            "id", "event_id", "event", "status", "attempts", "response_code", "latency_ms",
            "last_error", "next_attempt_at", "created_at", "delivered_at", "replay_of",
        )  # fmt: skip
        read_only_fields = fields

from rest_framework import serializers

from ..models import Notification


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = (
            "id", "appointment", "about", "patient", "kind", "channel", "rule", "start", "due_at",
            "status", "attempts", "provider_id", "reason", "created_at", "sent_at",
        )  # fmt: skip
        read_only_fields = fields

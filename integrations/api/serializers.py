from rest_framework import serializers

from clinic.api import ModelSerializer, PlausibleDateField, PlausibleDateTimeField, Serializer
from clinic.permissions import API_SCOPES

from ..models import ApiClient


class ApiClientSerializer(ModelSerializer):
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=API_SCOPES),
        allow_empty=False,
        max_length=len(API_SCOPES),
        help_text="`<area>:read` reads, `<area>:write` also changes; areas: practice "
        "(patients, coverage, directory), authorizations, scheduling, billing, notifications, "
        "waitlist. "
        "A scope never gives more than the integrator role.",
    )
    rate_limit_per_minute = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=1_000_000,
        help_text="Requests per minute; empty: the deployment's default.",
    )
    previous_secret_valid_until = PlausibleDateTimeField(
        source="previous_valid_until", read_only=True, allow_null=True
    )

    class Meta:
        model = ApiClient
        fields = [
            "id",
            "client_id",
            "name",
            "scopes",
            "rate_limit_per_minute",
            "created_at",
            "revoked_at",
            "previous_secret_valid_until",
        ]
        read_only_fields = ["id", "client_id", "created_at", "revoked_at"]


class ApiClientWithSecretSerializer(ApiClientSerializer):
    client_secret = serializers.CharField(
        read_only=True, help_text="Shown once, now: only its hash is kept."
    )

    class Meta(ApiClientSerializer.Meta):
        fields = [*ApiClientSerializer.Meta.fields, "client_secret"]


class RotateSecretSerializer(Serializer):
    previous_secret_valid_until = PlausibleDateTimeField(
        required=False,
        help_text="Until when the current secret keeps working (at most 30 days ahead); "
        "default: 24 hours from now. Now ends it at once.",
    )


class UsageQuerySerializer(Serializer):
    since = PlausibleDateField(required=False, help_text="First day (UTC); default 30 days ago.")
    until = PlausibleDateField(required=False, help_text="Last day (UTC); default today.")


class UsageDaySerializer(Serializer):
    day = serializers.DateField()
    kind = serializers.ChoiceField(
        choices=["api_call", "smart_booking_job", "webhook_delivered", "notification_sent"]
    )
    subject = serializers.CharField(
        help_text="Who: `client:<client id>`, or `user:staff` / `user:patient` / "
        "`user:anonymous`; empty for other kinds."
    )
    group = serializers.CharField(
        help_text="The API's endpoint group (`appointments`...) or the channel of a message."
    )
    count = serializers.IntegerField()

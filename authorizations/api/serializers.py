from django.utils import timezone
from rest_framework import serializers

from clinic.api import ModelSerializer, ScheduleDateField
from clinic.privacy import StaffOnlyFieldsMixin
from practice.models import ServiceCode

from ..models import Authorization, AuthorizationLine, UnitReservation
from ..selectors import authorization_alerts


class LineSerializer(ModelSerializer):
    """A line. Written inside its authorization: `lines` is the whole set (a line sent with
    its `id` is kept and changed, one without is new, one left out is removed)."""

    id = serializers.IntegerField(
        required=False, min_value=1, help_text="An existing line of this authorization to keep."
    )
    service_codes = serializers.SlugRelatedField(
        slug_field="code", many=True, queryset=ServiceCode.objects.all()
    )
    units_remaining = serializers.IntegerField(read_only=True)
    percent_used = serializers.FloatField(read_only=True)

    class Meta:
        model = AuthorizationLine
        fields = [
            "id",
            "service_codes",
            "units_authorized",
            "weekly_cap",
            "units_scheduled",
            "units_used",
            "units_remaining",
            "percent_used",
        ]
        read_only_fields = ["units_scheduled", "units_used"]


class AlertSerializer(serializers.Serializer):
    kind = serializers.CharField()
    message = serializers.CharField()


class AuthorizationSerializer(StaffOnlyFieldsMixin, ModelSerializer):
    """An authorization with its lines. As input it only parses: the rules (dates, coverage of
    the patient, lines) are `services.authorization_create` / `_update`'s."""

    # The clinic's own notes and when it wants to be warned: the patient reads the units.
    staff_only_fields = ("notes", "alert_threshold_percent", "alert_days_before_expiry")
    lines = LineSerializer(many=True)
    alerts = serializers.SerializerMethodField()
    payer = serializers.CharField(source="coverage.payer.name", read_only=True)

    class Meta:
        model = Authorization
        fields = [
            "id",
            "patient",
            "coverage",
            "payer",
            "number",
            "start_date",
            "end_date",
            "status",
            "alert_threshold_percent",
            "alert_days_before_expiry",
            "notes",
            "lines",
            "alerts",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def get_alerts(self, obj) -> list[dict]:
        # many=True makes a ListSerializer, whose data is a list: the stubs type the call as
        # the single serializer's.
        return AlertSerializer(authorization_alerts(obj), many=True).data  # type: ignore[return-value]


class ReservationSerializer(ModelSerializer):
    class Meta:
        model = UnitReservation
        fields = [
            "id",
            "line",
            "units",
            "state",
            "service_date",
            "reference",
            "created_at",
            "consumed_at",
            "released_at",
        ]
        read_only_fields = fields


class ReserveSerializer(serializers.Serializer):
    units = serializers.IntegerField(min_value=1, max_value=10_000)
    service_date = ScheduleDateField(required=False, help_text="Default: today.")
    reference = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")

    def validate(self, attrs):
        attrs.setdefault("service_date", timezone.localdate())
        return attrs


class ReservationActionSerializer(serializers.Serializer):
    reservation = serializers.IntegerField(
        required=False, help_text="The reservation to release or consume."
    )
    units = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="consume only: units rendered without a reservation (used directly).",
    )
    service_date = ScheduleDateField(required=False)
    reference = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")

from django.utils import timezone
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from clinic.api import ModelSerializer, ScheduleDateField
from clinic.privacy import StaffOnlyFieldsMixin
from practice.models import Coverage, Patient, ServiceCode

from ..models import Authorization, AuthorizationLine, AuthorizationRequest, UnitReservation
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


# Not "AuthorizationRequest": drf-spectacular names the request body of
# AuthorizationSerializer so.
@extend_schema_serializer(component_name="AuthorizationRequestItem")
class AuthorizationRequestSerializer(ModelSerializer):
    """A request for an assessment / authorization, as the queue and the patient read it."""

    service_code: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="code", read_only=True
    )
    authorization_number = serializers.CharField(
        source="authorization.number", read_only=True, default=None
    )

    class Meta:
        model = AuthorizationRequest
        fields = [
            "id",
            "patient",
            "service_code",
            "coverage",
            "visit_name",
            "message",
            "status",
            "requested_at",
            "decided_at",
            "decline_reason",
            "authorization",
            "authorization_number",
        ]
        read_only_fields = fields


class AuthorizationRequestCreateSerializer(serializers.Serializer):
    """Ask for an assessment / authorization of a service code. A patient asks for themselves
    (`patient` may be left out); asking again while one is open answers that one."""

    patient = serializers.PrimaryKeyRelatedField(
        queryset=Patient.objects.all(), required=False, help_text="Default: your own record."
    )
    service_code = serializers.SlugRelatedField(
        slug_field="code",
        queryset=ServiceCode.objects.filter(is_active=True),
        help_text="The code to authorize (e.g. 97156).",
    )
    visit_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    message = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class AuthorizationRequestApproveSerializer(serializers.Serializer):
    """Approving creates the authorization: one line for the requested code."""

    number = serializers.CharField(max_length=60)
    start_date = ScheduleDateField()
    end_date = ScheduleDateField()
    units_authorized = serializers.IntegerField(min_value=1, max_value=100_000)
    weekly_cap = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=100_000
    )
    coverage = serializers.PrimaryKeyRelatedField(
        queryset=Coverage.objects.all(),
        required=False,
        allow_null=True,
        help_text="Default: the request's (the patient's primary coverage when asked).",
    )

    def validate(self, attrs):
        if attrs["end_date"] < attrs["start_date"]:
            raise serializers.ValidationError({"end_date": ["Before the start date."]})
        return attrs


class AuthorizationRequestDeclineSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, help_text="Why, for the patient to read.")

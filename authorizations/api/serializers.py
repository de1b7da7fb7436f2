from django.db import transaction
from django.utils import timezone
from rest_framework import serializers

from clinic.api import ModelSerializer
from practice.models import Coverage, ServiceCode

from ..models import Authorization, AuthorizationLine, UnitReservation
from ..selectors import authorization_alerts


class LineSerializer(ModelSerializer):
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

    def validate(self, attrs):
        if self.instance is not None and "units_authorized" in attrs:
            taken = self.instance.units_scheduled + self.instance.units_used
            if attrs["units_authorized"] < taken:
                raise serializers.ValidationError(
                    {"units_authorized": f"{taken} units are already scheduled or used."}
                )
        return attrs


class AlertSerializer(serializers.Serializer):
    kind = serializers.CharField()
    message = serializers.CharField()


class AuthorizationSerializer(ModelSerializer):
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
        return AlertSerializer(authorization_alerts(obj), many=True).data

    def validate(self, attrs):
        start = attrs.get("start_date", getattr(self.instance, "start_date", None))
        end = attrs.get("end_date", getattr(self.instance, "end_date", None))
        if start and end and end < start:
            raise serializers.ValidationError({"end_date": "The end must not be before the start."})
        coverage: Coverage | None = attrs.get("coverage")
        patient = attrs.get("patient", getattr(self.instance, "patient", None))
        if coverage is not None and patient is not None and coverage.patient_id != patient.pk:
            raise serializers.ValidationError({"coverage": "This coverage is another patient's."})
        if self.instance is None and not attrs.get("lines"):
            raise serializers.ValidationError({"lines": "Give at least one line."})
        return attrs

    @transaction.atomic
    def create(self, validated_data):
        lines = validated_data.pop("lines")
        authorization = Authorization.objects.create(**validated_data)
        for line in lines:
            codes = line.pop("service_codes")
            created = AuthorizationLine.objects.create(authorization=authorization, **line)
            created.service_codes.set(codes)
        return authorization

    @transaction.atomic
    def update(self, instance, validated_data):
        lines = validated_data.pop("lines", None)
        for field, value in validated_data.items():
            setattr(instance, field, value)
        instance.save()
        if lines is not None:
            # New lines only; existing lines change through their own fields (units grow).
            for line in lines:
                codes = line.pop("service_codes")
                created = AuthorizationLine.objects.create(authorization=instance, **line)
                created.service_codes.set(codes)
        return instance


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
    service_date = serializers.DateField(required=False, help_text="Default: today.")
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
    service_date = serializers.DateField(required=False)
    reference = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")

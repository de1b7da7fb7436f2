import zoneinfo
from datetime import date, datetime, time, timedelta

from django.utils import timezone
from rest_framework import serializers

from practice.models import Location, Patient, Practitioner

from ..models import Appointment, AppointmentSeries, AppointmentType, TimeOff, WorkingHours

MAX_WINDOW_DAYS = 62


def parse_zone(value: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise serializers.ValidationError(f"'{value}' is not an IANA time zone.") from error


class DateOrDateTimeField(serializers.Field):
    """`2027-03-14` (a whole local day in the request's zone) or an ISO datetime."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Give a date (YYYY-MM-DD) or an ISO datetime.")
        try:
            if len(data) == 10:
                return date.fromisoformat(data)
            return datetime.fromisoformat(data.replace("Z", "+00:00"))
        except ValueError as error:
            raise serializers.ValidationError(
                "Give a date (YYYY-MM-DD) or an ISO datetime."
            ) from error

    def to_representation(self, value):
        return value.isoformat()


class AvailabilityQuerySerializer(serializers.Serializer):
    practitioner = serializers.IntegerField(required=False, min_value=1)
    specialty = serializers.SlugField(required=False)
    appointment_type = serializers.IntegerField(min_value=1)
    start = DateOrDateTimeField()
    end = DateOrDateTimeField()
    tz = serializers.CharField(required=False)
    location = serializers.IntegerField(required=False, min_value=1)
    telehealth = serializers.BooleanField(required=False, allow_null=True, default=None)

    def validate_tz(self, value):
        parse_zone(value)
        return value

    def validate(self, attrs):
        if bool(attrs.get("practitioner")) == bool(attrs.get("specialty")):
            raise serializers.ValidationError(
                {"practitioner": "Give exactly one of practitioner or specialty."}
            )
        tz = zoneinfo.ZoneInfo(attrs.get("tz") or self.context["default_tz"])
        attrs["zone"] = tz
        attrs["start"] = _as_moment(attrs["start"], tz, end_of_day=False)
        attrs["end"] = _as_moment(attrs["end"], tz, end_of_day=True)
        if attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": "The end must be after the start."})
        if attrs["end"] - attrs["start"] > timedelta(days=MAX_WINDOW_DAYS):
            raise serializers.ValidationError(
                {"end": f"Ask for at most {MAX_WINDOW_DAYS} days at a time."}
            )
        return attrs


def _as_moment(value, tz, *, end_of_day: bool) -> datetime:
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else value.replace(tzinfo=tz)
    day = value + timedelta(days=1) if end_of_day else value
    return datetime.combine(day, time.min, tzinfo=tz)


class SlotSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    location = serializers.IntegerField(allow_null=True, source="location_id")


class PractitionerSlotsSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="practitioner.pk")
    display_name = serializers.CharField(source="practitioner.display_name")
    timezone = serializers.CharField(source="practitioner.timezone")
    slots = SlotSerializer(many=True)


class AvailabilitySerializer(serializers.Serializer):
    appointment_type = serializers.IntegerField()
    timezone = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    slot_step_minutes = serializers.IntegerField()
    practitioners = PractitionerSlotsSerializer(many=True)


class AlternativeSerializer(serializers.Serializer):
    practitioner = serializers.IntegerField()
    practitioner_name = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    location = serializers.IntegerField(allow_null=True)


class ConflictSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class ConflictCheckSerializer(serializers.Serializer):
    practitioner = serializers.PrimaryKeyRelatedField(queryset=Practitioner.objects.all())
    start = serializers.DateTimeField()
    appointment_type = serializers.PrimaryKeyRelatedField(
        queryset=AppointmentType.objects.all(), required=False
    )
    end = serializers.DateTimeField(required=False)

    def validate(self, attrs):
        if not attrs.get("appointment_type") and not attrs.get("end"):
            raise serializers.ValidationError(
                {"appointment_type": "Give the appointment type (or an end time)."}
            )
        if attrs.get("end") and attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": "The end must be after the start."})
        return attrs


class ConflictCheckResultSerializer(serializers.Serializer):
    has_conflict = serializers.BooleanField()
    conflicting_appointments = ConflictSerializer(many=True)
    suggested_alternatives = AlternativeSerializer(many=True)


class AppointmentSerializer(serializers.ModelSerializer):
    practitioner = serializers.SerializerMethodField()
    patient = serializers.SerializerMethodField()
    appointment_type = serializers.SerializerMethodField()
    ics_url = serializers.SerializerMethodField()

    class Meta:
        model = Appointment
        fields = [
            "id",
            "practitioner",
            "patient",
            "appointment_type",
            "location",
            "start",
            "end",
            "status",
            "source",
            "is_telehealth",
            "telehealth_url",
            "notes",
            "overbooked",
            "booked_by",
            "created_at",
            "cancelled_at",
            "cancellation_reason",
            "is_late_cancel",
            "checked_in_at",
            "completed_at",
            "reschedule_count",
            "series",
            "ics_url",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if self.context.get("hide_notes"):
            data.pop("notes", None)
        return data

    def get_practitioner(self, obj) -> dict:
        return {"id": obj.practitioner_id, "display_name": obj.practitioner.display_name}

    def get_patient(self, obj) -> dict:
        return {"id": obj.patient_id, "name": str(obj.patient)}

    def get_appointment_type(self, obj) -> dict:
        t = obj.appointment_type
        return {"id": t.pk, "name": t.name, "duration_minutes": t.duration_minutes}

    def get_ics_url(self, obj) -> str:
        return f"/api/v1/appointments/{obj.pk}/ics/"


class AppointmentCreateSerializer(serializers.Serializer):
    patient = serializers.PrimaryKeyRelatedField(queryset=Patient.objects.all(), required=False)
    practitioner = serializers.PrimaryKeyRelatedField(queryset=Practitioner.objects.all())
    appointment_type = serializers.PrimaryKeyRelatedField(queryset=AppointmentType.objects.all())
    start = serializers.DateTimeField()
    location = serializers.PrimaryKeyRelatedField(
        queryset=Location.objects.all(), required=False, allow_null=True
    )
    telehealth = serializers.BooleanField(required=False, allow_null=True, default=None)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    overbook = serializers.BooleanField(required=False, default=False)


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")


class RescheduleSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    overbook = serializers.BooleanField(required=False, default=False)


class SeriesCreateSerializer(serializers.Serializer):
    patient = serializers.PrimaryKeyRelatedField(queryset=Patient.objects.all(), required=False)
    practitioner = serializers.PrimaryKeyRelatedField(queryset=Practitioner.objects.all())
    appointment_type = serializers.PrimaryKeyRelatedField(queryset=AppointmentType.objects.all())
    start = serializers.DateTimeField(help_text="The first occurrence.")
    rrule = serializers.CharField(
        max_length=500, help_text="RFC 5545, e.g. FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=24"
    )
    timezone = serializers.CharField(
        required=False,
        help_text="Zone whose wall clock the rule follows (default: the practitioner's).",
    )
    location = serializers.PrimaryKeyRelatedField(
        queryset=Location.objects.all(), required=False, allow_null=True
    )
    telehealth = serializers.BooleanField(required=False, allow_null=True, default=None)
    partial = serializers.BooleanField(required=False, default=False)

    def validate_timezone(self, value):
        parse_zone(value)
        return value


class SeriesSerializer(serializers.ModelSerializer):
    class Meta:
        model = AppointmentSeries
        fields = [
            "id",
            "patient",
            "practitioner",
            "appointment_type",
            "rrule",
            "first_start",
            "timezone",
            "created_at",
        ]
        read_only_fields = fields


class SeriesResultSerializer(serializers.Serializer):
    series = SeriesSerializer(allow_null=True)
    booked = AppointmentSerializer(many=True)
    skipped = serializers.ListField(child=serializers.DictField())


class SeriesCancelSerializer(serializers.Serializer):
    after = serializers.DateTimeField(required=False, help_text="Default: now.")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")


class AppointmentTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = AppointmentType
        fields = [
            "id",
            "name",
            "service_code",
            "duration_minutes",
            "buffer_before_minutes",
            "buffer_after_minutes",
            "min_notice_minutes",
            "horizon_days",
            "mode",
            "practitioners",
            "is_active",
        ]


class WorkingHoursSerializer(serializers.ModelSerializer):
    class Meta:
        model = WorkingHours
        fields = [
            "id",
            "practitioner",
            "weekday",
            "start_time",
            "end_time",
            "location",
            "effective_from",
            "effective_to",
        ]

    def validate(self, attrs):
        start = attrs.get("start_time", getattr(self.instance, "start_time", None))
        end = attrs.get("end_time", getattr(self.instance, "end_time", None))
        if start and end and end <= start:
            raise serializers.ValidationError({"end_time": "The end must be after the start."})
        first = attrs.get("effective_from", getattr(self.instance, "effective_from", None))
        last = attrs.get("effective_to", getattr(self.instance, "effective_to", None))
        if first and last and last < first:
            raise serializers.ValidationError(
                {"effective_to": "The last day must not be before the first."}
            )
        return attrs


class TimeOffSerializer(serializers.ModelSerializer):
    class Meta:
        model = TimeOff
        fields = ["id", "practitioner", "start", "end", "reason"]

    def validate(self, attrs):
        start = attrs.get("start", getattr(self.instance, "start", None))
        end = attrs.get("end", getattr(self.instance, "end", None))
        if start and end and end <= start:
            raise serializers.ValidationError({"end": "The end must be after the start."})
        return attrs


class CalendarFeedSerializer(serializers.Serializer):
    practitioner = serializers.PrimaryKeyRelatedField(queryset=Practitioner.objects.all())


class CalendarFeedResultSerializer(serializers.Serializer):
    practitioner = serializers.IntegerField()
    url = serializers.CharField()

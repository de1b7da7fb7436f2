import zoneinfo
from datetime import date, datetime, time, timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clinic.api import ModelSerializer, ScheduleDateTimeField, Serializer
from clinic.inputs import zone_error
from clinic.privacy import StaffOnlyFieldsMixin
from practice.models import Location, Patient, Practitioner

from .. import selectors
from ..errors import SmartRequestInvalidError
from ..models import (
    Appointment,
    AppointmentSeries,
    AppointmentType,
    Closure,
    SmartBookingJob,
    TimeOff,
    WorkingHours,
)
from ..smart.job import JOB_STAFF_FIELDS
from ..smart.request import (
    LOCATIONS,
    MAX_SESSIONS_PER_WEEK,
    MAX_WEEKS,
    PRACTITIONERS,
    TIMES_OF_DAY,
    TYPES,
    Recurring,
    SmartRequest,
    check_language,
    check_smart_request,
    check_zone,
)

MAX_WINDOW_DAYS = 62


def parse_zone(value: str) -> zoneinfo.ZoneInfo:
    # Only names of the zone database: ZoneInfo reads any other string as a file path.
    if message := zone_error(value):
        raise serializers.ValidationError(message)
    return zoneinfo.ZoneInfo(value)


@extend_schema_field(
    {
        "oneOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}],
        "description": "A day (YYYY-MM-DD: the whole day in the request's zone) or a datetime.",
    }
)
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


class AvailabilityQuerySerializer(Serializer):
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
    start = ScheduleDateTimeField()
    appointment_type = serializers.PrimaryKeyRelatedField(
        queryset=AppointmentType.objects.all(), required=False
    )
    end = ScheduleDateTimeField(required=False)

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


class AppointmentSerializer(StaffOnlyFieldsMixin, ModelSerializer):
    # What staff write or decide about a visit (their notes, who booked it, that it was booked
    # over another): not for the patient, who sees their visit's times, people and status.
    staff_only_fields = ("notes", "booked_by", "overbooked")
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

    def get_practitioner(self, obj) -> dict:
        return {"id": obj.practitioner_id, "display_name": obj.practitioner.display_name}

    def get_patient(self, obj) -> dict:
        return {"id": obj.patient_id, "name": str(obj.patient)}

    def get_appointment_type(self, obj) -> dict:
        t = obj.appointment_type
        return {"id": t.pk, "name": t.name, "duration_minutes": t.duration_minutes}

    def get_ics_url(self, obj) -> str:
        return f"/api/v1/appointments/{obj.pk}/ics/"


_PK: dict[str, Any] = {"min_value": 1, "max_value": 2**63 - 1}


class AppointmentCreateSerializer(Serializer):
    """The booking request. Patient, practitioner, type and location are read in one query
    (`selectors.rows_by_pk`), not one each."""

    patient = serializers.IntegerField(required=False, **_PK)
    practitioner = serializers.IntegerField(**_PK)
    appointment_type = serializers.IntegerField(**_PK)
    start = ScheduleDateTimeField()
    location = serializers.IntegerField(required=False, allow_null=True, **_PK)
    telehealth = serializers.BooleanField(required=False, allow_null=True, default=None)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    overbook = serializers.BooleanField(required=False, default=False)

    RELATED = {
        "patient": Patient,
        "practitioner": Practitioner,
        "appointment_type": AppointmentType,
        "location": Location,
    }

    def validate(self, attrs):
        named = [name for name in self.RELATED if attrs.get(name) is not None]
        rows = selectors.rows_by_pk(*((self.RELATED[name], attrs[name]) for name in named))
        missing = {}
        for name, row in zip(named, rows, strict=True):
            if row is None:
                message = serializers.PrimaryKeyRelatedField.default_error_messages
                missing[name] = [message["does_not_exist"].format(pk_value=attrs[name])]
            attrs[name] = row
        if missing:
            raise serializers.ValidationError(missing)
        return attrs


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")


class RescheduleSerializer(serializers.Serializer):
    start = ScheduleDateTimeField()
    practitioner = serializers.PrimaryKeyRelatedField(
        queryset=Practitioner.objects.all(),
        required=False,
        help_text="Move to another practitioner (default: the visit's own).",
    )
    overbook = serializers.BooleanField(required=False, default=False)


class SeriesCreateSerializer(serializers.Serializer):
    patient = serializers.PrimaryKeyRelatedField(queryset=Patient.objects.all(), required=False)
    practitioner = serializers.PrimaryKeyRelatedField(queryset=Practitioner.objects.all())
    appointment_type = serializers.PrimaryKeyRelatedField(queryset=AppointmentType.objects.all())
    start = ScheduleDateTimeField(help_text="The first occurrence.")
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
    # A field named like BaseSerializer.partial, which it does not shadow: the serializer's
    # metaclass moves declared fields off the class.
    partial = serializers.BooleanField(required=False, default=False)  # type: ignore[assignment]

    def validate_timezone(self, value):
        parse_zone(value)
        return value


class SeriesSerializer(ModelSerializer):
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
    after = ScheduleDateTimeField(required=False, help_text="Default: now.")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")


class AppointmentTypeSerializer(ModelSerializer):
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


class WorkingHoursSerializer(ModelSerializer):
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


class TimeOffSerializer(ModelSerializer):
    start = ScheduleDateTimeField()
    end = ScheduleDateTimeField()

    class Meta:
        model = TimeOff
        fields = ["id", "practitioner", "start", "end", "reason"]

    def validate(self, attrs):
        start = attrs.get("start", getattr(self.instance, "start", None))
        end = attrs.get("end", getattr(self.instance, "end", None))
        if start and end and end <= start:
            raise serializers.ValidationError({"end": "The end must be after the start."})
        return attrs


class ClosureSerializer(ModelSerializer):
    class Meta:
        model = Closure
        fields = ["id", "name", "start_date", "end_date", "location"]

    def validate(self, attrs):
        first = attrs.get("start_date", getattr(self.instance, "start_date", None))
        last = attrs.get("end_date", getattr(self.instance, "end_date", None))
        if first and last and last < first:
            raise serializers.ValidationError(
                {"end_date": "The last day must not be before the first."}
            )
        return attrs


class CalendarFeedSerializer(serializers.Serializer):
    practitioner = serializers.PrimaryKeyRelatedField(queryset=Practitioner.objects.all())


class CalendarFeedResultSerializer(serializers.Serializer):
    practitioner = serializers.IntegerField()
    url = serializers.CharField()


class RecurringSerializer(serializers.Serializer):
    sessions_per_week = serializers.IntegerField(min_value=1, max_value=MAX_SESSIONS_PER_WEEK)
    weeks = serializers.IntegerField(min_value=1, max_value=MAX_WEEKS)


def _smart_request_checked(check, value):
    """Run one of the smart request's checks as a DRF field validator."""
    try:
        check(value)
    except SmartRequestInvalidError as error:
        [messages] = error.errors.values()
        raise serializers.ValidationError(messages) from error
    return value


class SmartBookingRequestSerializer(serializers.Serializer):
    """What the patient needs. Exactly one of specialty, practitioner or practitioners."""

    # Parses the JSON into a `SmartRequest` (validated_data["smart_request"]); the rules are
    # scheduling.smart.request's, shared with the patient pages.

    patient = serializers.PrimaryKeyRelatedField(queryset=Patient.objects.all(), required=False)
    specialty = serializers.SlugField(required=False)
    practitioner = serializers.PrimaryKeyRelatedField(queryset=PRACTITIONERS, required=False)
    practitioners = serializers.PrimaryKeyRelatedField(
        queryset=PRACTITIONERS, many=True, required=False
    )
    appointment_type = serializers.PrimaryKeyRelatedField(queryset=TYPES)
    earliest_date = serializers.DateField()
    latest_date = serializers.DateField()
    preferred_weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6), required=False, max_length=7
    )
    preferred_times = serializers.ListField(
        child=serializers.ChoiceField(choices=list(TIMES_OF_DAY)),
        required=False,
        max_length=3,
    )
    location = serializers.PrimaryKeyRelatedField(
        queryset=LOCATIONS, required=False, allow_null=True
    )
    telehealth = serializers.BooleanField(required=False, allow_null=True, default=None)
    language = serializers.CharField(required=False, max_length=2, min_length=2)
    tz = serializers.CharField(required=False, help_text="Zone of the dates and times of day.")
    recurring = RecurringSerializer(required=False, allow_null=True)

    def validate_tz(self, value):
        return _smart_request_checked(check_zone, value)

    def validate_language(self, value):
        return _smart_request_checked(check_language, value)

    def validate(self, attrs):
        recurring = attrs.get("recurring")
        smart_request = SmartRequest(
            appointment_type=attrs["appointment_type"],
            earliest_date=attrs["earliest_date"],
            latest_date=attrs["latest_date"],
            tz=attrs.get("tz") or self.context["default_tz"],
            specialty=attrs.get("specialty"),
            practitioner=attrs.get("practitioner"),
            practitioners=tuple(attrs.get("practitioners") or ()),
            preferred_weekdays=tuple(attrs.get("preferred_weekdays") or ()),
            preferred_times=tuple(attrs.get("preferred_times") or ()),
            location=attrs.get("location"),
            telehealth=attrs.get("telehealth"),
            language=attrs.get("language"),
            recurring=Recurring(**recurring) if recurring else None,
        )
        try:
            check_smart_request(smart_request)
        except SmartRequestInvalidError as error:
            raise serializers.ValidationError(error.errors) from error
        attrs["smart_request"] = smart_request
        return attrs

    def to_job_request(self) -> dict:
        return self.validated_data["smart_request"].to_job_request()


class SmartBookingJobSerializer(StaffOnlyFieldsMixin, ModelSerializer):
    staff_only_fields = JOB_STAFF_FIELDS
    job_id = serializers.UUIDField(source="id", read_only=True)
    status_url = serializers.SerializerMethodField()

    class Meta:
        model = SmartBookingJob
        fields = [
            "job_id",
            "status",
            "patient",
            "request",
            "created_at",
            "started_at",
            "completed_at",
            "worker_id",
            "retry_count",
            "error_message",
            "result",
            "reasons",
            "nearest_options",
            "status_url",
        ]
        read_only_fields = fields

    def get_status_url(self, obj) -> str:
        return f"/api/v1/smart-bookings/{obj.pk}/"


class SmartBookingAcceptedSerializer(serializers.Serializer):
    job_id = serializers.UUIDField()
    status = serializers.CharField()
    estimated_completion = serializers.DateTimeField()
    status_url = serializers.CharField()
    websocket_url = serializers.CharField()

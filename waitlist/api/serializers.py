from rest_framework import serializers

from clinic.privacy import StaffOnlyFieldsMixin
from practice.models import Patient, Practitioner, Specialty
from scheduling.models import AppointmentType

from ..models import WaitlistEntry, WaitlistOffer


class WaitlistEntrySerializer(StaffOnlyFieldsMixin, serializers.ModelSerializer):
    """An entry as read. `authorization_note` says when the patient's authorizations cannot
    cover the visit type (the entry waits, and is passed over, until they can). `notes` are the
    clinic's, as an appointment's: staff read and write them, a patient never sees them."""

    staff_only_fields = ("notes",)

    class Meta:
        model = WaitlistEntry
        fields = (
            "id", "patient", "practitioner", "specialty", "appointment_type", "earliest_date",
            "latest_date", "preferred_weekdays", "preferred_start_time", "preferred_end_time",
            "status", "authorization_note", "notes", "appointment", "created_at",
        )  # fmt: skip
        read_only_fields = fields


class WaitlistEntryWriteSerializer(serializers.Serializer):
    """What a new entry says. Staff name the patient; a patient's entries are their own."""

    patient = serializers.PrimaryKeyRelatedField(
        queryset=Patient.objects.all(), required=False, allow_null=True
    )
    practitioner = serializers.PrimaryKeyRelatedField(
        queryset=Practitioner.objects.filter(is_active=True), required=False, allow_null=True
    )
    specialty = serializers.SlugRelatedField(
        slug_field="slug", queryset=Specialty.objects.all(), required=False, allow_null=True
    )
    appointment_type = serializers.PrimaryKeyRelatedField(queryset=AppointmentType.objects.all())
    earliest_date = serializers.DateField()
    latest_date = serializers.DateField()
    preferred_weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6), required=False, max_length=7
    )
    preferred_start_time = serializers.TimeField(required=False, allow_null=True)
    preferred_end_time = serializers.TimeField(required=False, allow_null=True)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class WaitlistEntryUpdateSerializer(serializers.Serializer):
    """What may change on a waiting entry: the dates and the wishes."""

    earliest_date = serializers.DateField(required=False)
    latest_date = serializers.DateField(required=False)
    preferred_weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6), required=False, max_length=7
    )
    preferred_start_time = serializers.TimeField(required=False, allow_null=True)
    preferred_end_time = serializers.TimeField(required=False, allow_null=True)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class WaitlistOfferSerializer(serializers.ModelSerializer):
    class Meta:
        model = WaitlistOffer
        fields = (
            "id", "entry", "patient", "practitioner", "appointment_type", "start", "end",
            "status", "expires_at", "appointment", "created_at", "decided_at",
        )  # fmt: skip
        read_only_fields = fields

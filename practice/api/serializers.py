"""Input and output shapes of the practice API.

Input serializers are `ModelSerializer`s, so every model field validator (NPI check digit,
ISO 639-1 languages, IANA time zones, rating bounds, uniqueness) runs on API input and the
refusal names the field. They only parse: the services validate the whole row again
(`full_clean`, `clean()`, check constraints) and write. Output serializers are read-only and
never touch the database beyond what the selectors prefetched.
"""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import User
from clinic.api import ModelSerializer, Serializer

from .. import services
from ..models import (
    Coverage,
    Location,
    Patient,
    Payer,
    Practitioner,
    ServiceCode,
    Specialty,
)
from ..validators import validate_language

# Locations and specialties ------------------------------------------------------------------


class LocationBriefSerializer(ModelSerializer):
    class Meta:
        model = Location
        fields = ["id", "name", "timezone"]
        read_only_fields = fields


class LocationPublicSerializer(ModelSerializer):
    class Meta:
        model = Location
        fields = ["id", "name", "address", "phone", "email", "timezone"]
        read_only_fields = fields


class LocationSerializer(LocationPublicSerializer):
    class Meta(LocationPublicSerializer.Meta):
        fields = [*LocationPublicSerializer.Meta.fields, "is_active"]
        read_only_fields = fields


class LocationInputSerializer(ModelSerializer):
    class Meta:
        model = Location
        fields = list(services.LOCATION_FIELDS)


class SpecialtyPublicSerializer(ModelSerializer):
    class Meta:
        model = Specialty
        fields = ["id", "slug", "name"]
        read_only_fields = fields


class SpecialtySerializer(SpecialtyPublicSerializer):
    class Meta(SpecialtyPublicSerializer.Meta):
        fields = [*SpecialtyPublicSerializer.Meta.fields, "is_active"]
        read_only_fields = fields


class SpecialtyInputSerializer(ModelSerializer):
    class Meta:
        model = Specialty
        fields = list(services.SPECIALTY_FIELDS)


# Practitioners ------------------------------------------------------------------------------


@extend_schema_field(SpecialtyPublicSerializer(many=True))
class SpecialtyListField(serializers.ReadOnlyField):
    """The `specialty_list` JSON the selector built in SQL, passed through as is."""


@extend_schema_field(LocationBriefSerializer(many=True))
class LocationListField(serializers.ReadOnlyField):
    """The `location_list` JSON the selector built in SQL, passed through as is."""


class PractitionerPublicSerializer(ModelSerializer):
    """What anyone, anonymous portal visitors included, sees. The NPI is public (the US NPI
    registry publishes it); account links and internal flags are not. Renders practitioners
    from `selectors.practitioner_queryset` and `selectors.practitioner_search` (their related
    rows come as JSON)."""

    specialties = SpecialtyListField(source="specialty_list")
    locations = LocationListField(source="location_list")

    class Meta:
        model = Practitioner
        fields = [
            "id",
            "display_name",
            "title",
            "npi",
            "specialties",
            "languages",
            "bio",
            "rating_average",
            "rating_count",
            "is_verified",
            "accepts_new_patients",
            "offers_telehealth",
            "timezone",
            "locations",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Practitioner) -> dict[str, Any]:
        data = super().to_representation(instance)
        # Annotations added by registered search extensions (e.g. `next_available`).
        for name in self.context.get("extension_fields", ()):
            data[name] = getattr(instance, name, None)
        return data


class PractitionerSerializer(PractitionerPublicSerializer):
    """The staff view: adds the linked user, the active flag and the creation time."""

    class Meta(PractitionerPublicSerializer.Meta):
        fields = [*PractitionerPublicSerializer.Meta.fields, "user", "is_active", "created_at"]
        read_only_fields = fields


class PractitionerInputSerializer(ModelSerializer):
    specialties = serializers.SlugRelatedField(
        many=True,
        slug_field="slug",
        queryset=Specialty.objects.filter(is_active=True),
        required=False,
        help_text="Specialty slugs; replaces the whole set.",
    )
    locations = serializers.PrimaryKeyRelatedField(
        many=True,
        queryset=Location.objects.filter(is_active=True),
        required=False,
        help_text="Location ids; replaces the whole set.",
    )
    user = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = Practitioner
        fields = [*services.PRACTITIONER_FIELDS, "specialties", "locations"]

    def validate_npi(self, value: str | None) -> str | None:
        return value or None


class PractitionerSearchParamsSerializer(Serializer):
    """Query parameters of `GET /practitioners/`."""

    specialty = serializers.CharField(
        required=False, help_text="Specialty slug; several separated by commas match any."
    )
    language = serializers.CharField(
        required=False,
        help_text="ISO 639-1 code the practitioner speaks; several separated by commas match any.",
    )
    location = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text=(
            "Location id: practitioners with working hours there; `next_available` is then "
            "the earliest free slot at that location, and `available_before` filters on it."
        ),
    )
    telehealth = serializers.BooleanField(required=False, allow_null=True, default=None)
    accepting = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="Accepts new patients."
    )
    verified = serializers.BooleanField(required=False, allow_null=True, default=None)
    min_rating = serializers.DecimalField(
        required=False, max_digits=3, decimal_places=2, min_value=0, max_value=5
    )
    q = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text="Name or text (title, bio, specialty); best match first.",
    )
    include_inactive = serializers.BooleanField(
        required=False, default=False, help_text="Staff only: include inactive practitioners."
    )

    def validate_specialty(self, value: str) -> tuple[str, ...]:
        return tuple(part.strip() for part in value.split(",") if part.strip())

    def validate_language(self, value: str) -> tuple[str, ...]:
        codes = tuple(part.strip() for part in value.split(",") if part.strip())
        for code in codes:
            validate_language(code)
        return codes


# Patients and coverage ----------------------------------------------------------------------


class PatientSerializer(ModelSerializer):
    class Meta:
        model = Patient
        fields = ["id", *services.PATIENT_FIELDS, "is_active", "created_at"]
        read_only_fields = fields


class PatientInputSerializer(ModelSerializer):
    user = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = Patient
        fields = list(services.PATIENT_FIELDS)


class PatientSelfInputSerializer(ModelSerializer):
    """What a patient may change on their own record. Sending a field that only the clinic
    changes (name, date of birth, sex, linked account) is refused, naming the field."""

    class Meta:
        model = Patient
        fields = list(services.PATIENT_SELF_FIELDS)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        clinic_only = (set(services.PATIENT_FIELDS) | {"is_active"}) - set(
            services.PATIENT_SELF_FIELDS
        )
        refused = sorted(clinic_only & set(self.initial_data))
        if refused:
            raise serializers.ValidationError(
                {name: "Only the clinic can change this." for name in refused}
            )
        return attrs


class PayerBriefSerializer(ModelSerializer):
    class Meta:
        model = Payer
        fields = ["id", "name", "edi_payer_id"]
        read_only_fields = fields


class PayerSerializer(ModelSerializer):
    class Meta:
        model = Payer
        fields = ["id", *services.PAYER_FIELDS, "is_active"]
        read_only_fields = fields


class PayerInputSerializer(ModelSerializer):
    class Meta:
        model = Payer
        fields = list(services.PAYER_FIELDS)


class CoverageSerializer(ModelSerializer):
    payer = PayerBriefSerializer(read_only=True)

    class Meta:
        model = Coverage
        fields = ["id", "patient", *services.COVERAGE_FIELDS, "is_active"]
        read_only_fields = fields


class CoverageInputSerializer(ModelSerializer):
    payer = serializers.PrimaryKeyRelatedField(queryset=Payer.objects.all())

    class Meta:
        model = Coverage
        fields = list(services.COVERAGE_FIELDS)
        # The patient comes from the URL; the service checks patient + payer + member id.
        validators: list = []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start = attrs.get("effective_from", getattr(self.instance, "effective_from", None))
        end = attrs.get("effective_to", getattr(self.instance, "effective_to", None))
        if start and end and end < start:
            raise serializers.ValidationError(
                {"effective_to": "The coverage cannot end before it starts."}
            )
        return attrs


# Service codes ------------------------------------------------------------------------------


class ServiceCodeSerializer(ModelSerializer):
    is_timed = serializers.BooleanField(read_only=True)

    class Meta:
        model = ServiceCode
        fields = ["id", *services.SERVICE_CODE_FIELDS, "is_timed", "is_active"]
        read_only_fields = fields


class ServiceCodeInputSerializer(ModelSerializer):
    class Meta:
        model = ServiceCode
        fields = list(services.SERVICE_CODE_FIELDS)

"""A clinic's master data: locations, specialties, practitioners, patients, payers, coverage
and service codes. Rules that fit in the database are constraints here."""

from datetime import date

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Mod, Ord, Substr
from django.db.models.lookups import Exact
from django.utils import timezone

from .validators import (
    validate_country,
    validate_language,
    validate_languages,
    validate_npi,
    validate_timezone,
)

LANGUAGE_CODE = RegexValidator(r"^[a-z]{2}$", "A two-letter ISO 639-1 code.")


def _npi_digit(position: int):
    # ASCII arithmetic instead of a cast: a cast of a non-digit would raise a DataError before
    # the format constraint could report it as a constraint violation.
    return Ord(Substr("npi", position, 1)) - 48


def _npi_luhn_sum():
    """The Luhn sum of '80840' + NPI as a SQL expression. The prefix always contributes 24;
    d1, d3, d5, d7 and d9 are doubled (digit sum of 2d is 2d - 9 * (d / 5) in integers)."""
    total = Value(24)
    for position in (1, 3, 5, 7, 9):
        digit = _npi_digit(position)
        total = total + digit * 2 - (digit / 5) * 9
    for position in (2, 4, 6, 8, 10):
        total = total + _npi_digit(position)
    return total


class Location(models.Model):
    name = models.CharField(max_length=200)
    address = models.TextField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    timezone = models.CharField(max_length=64, validators=[validate_timezone])
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Specialty(models.Model):
    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "specialties"

    def __str__(self) -> str:
        return self.name


class Practitioner(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="practitioner",
    )
    display_name = models.CharField(max_length=200)
    title = models.CharField(max_length=120, blank=True, help_text="e.g. BCBA, MD, PT, PsyD")
    specialties = models.ManyToManyField(Specialty, related_name="practitioners", blank=True)
    npi = models.CharField(
        "NPI", max_length=10, null=True, blank=True, unique=True, validators=[validate_npi]
    )
    languages = ArrayField(
        models.CharField(max_length=2, validators=[LANGUAGE_CODE]),
        default=list,
        blank=True,
        validators=[validate_languages],
        help_text="ISO 639-1 codes, e.g. en, es.",
    )
    bio = models.TextField(blank=True)
    rating_average = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(5)],
    )
    rating_count = models.PositiveIntegerField(default=0)
    is_verified = models.BooleanField(default=False)
    accepts_new_patients = models.BooleanField(default=True)
    offers_telehealth = models.BooleanField(default=False)
    timezone = models.CharField(max_length=64, validators=[validate_timezone])
    locations = models.ManyToManyField(Location, related_name="practitioners", blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Free-text search over name (weight A), title (B) and bio (C), kept by PostgreSQL itself.
    # The 'simple' configuration: names and bios come in many languages, so no stemming.
    search_document = models.GeneratedField(
        expression=SearchVector("display_name", config="simple", weight="A")
        + SearchVector("title", config="simple", weight="B")
        + SearchVector("bio", config="simple", weight="C"),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["display_name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(npi__isnull=True) | Q(npi__regex=r"^[0-9]{10}$"),
                name="practitioner_npi_10_digits",
            ),
            models.CheckConstraint(
                condition=Q(npi__isnull=True) | Q(Exact(Mod(_npi_luhn_sum(), 10), 0)),
                name="practitioner_npi_check_digit",
                violation_error_message="The NPI's check digit is wrong.",
            ),
            models.CheckConstraint(
                condition=Q(rating_average__gte=0) & Q(rating_average__lte=5),
                name="practitioner_rating_0_to_5",
            ),
            models.CheckConstraint(
                condition=Q(rating_count__gte=0), name="practitioner_rating_count_non_negative"
            ),
        ]
        indexes = [
            GinIndex(fields=["languages"], name="practitioner_languages_gin"),
            GinIndex(
                name="practitioner_name_trgm",
                fields=["display_name"],
                opclasses=["gin_trgm_ops"],
            ),
            GinIndex(fields=["search_document"], name="practitioner_search_gin"),
            # The default search order (no text query) among active practitioners.
            models.Index(
                F("rating_average").desc(),
                "display_name",
                "id",
                name="practitioner_rank_idx",
                condition=Q(is_active=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.display_name}, {self.title}" if self.title else self.display_name


class Patient(models.Model):
    class Sex(models.TextChoices):
        FEMALE = "female", "Female"
        MALE = "male", "Male"
        OTHER = "other", "Other"
        UNKNOWN = "unknown", "Unknown"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="patient",
    )
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    date_of_birth = models.DateField()
    sex = models.CharField(max_length=10, choices=Sex.choices, default=Sex.UNKNOWN)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    preferred_language = models.CharField(
        max_length=2, default="en", validators=[LANGUAGE_CODE, validate_language]
    )
    timezone = models.CharField(max_length=64, validators=[validate_timezone])
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(
        max_length=2, default="US", validators=[validate_country], help_text="ISO 3166-1 alpha-2."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["last_name", "first_name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(date_of_birth__gte="1900-01-01"), name="patient_dob_after_1900"
            ),
        ]
        indexes = [models.Index(fields=["last_name", "first_name"], name="patient_name_idx")]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def full_name(self) -> str:
        return str(self)

    def clean(self) -> None:
        # `patient_dob_after_1900` in the database; here reported on the field, with the future.
        if self.date_of_birth and not (
            date(1900, 1, 1) <= self.date_of_birth <= timezone.localdate()
        ):
            raise ValidationError(
                {"date_of_birth": "A date of birth between 1900-01-01 and today."}, code="dob"
            )


class Payer(models.Model):
    class ClaimFilingCode(models.TextChoices):
        # X12 837P SBR09 claim filing indicator codes.
        COMMERCIAL = "CI", "Commercial insurance"
        BLUE_CROSS = "BL", "Blue Cross / Blue Shield"
        HMO = "HM", "HMO"
        PPO = "12", "PPO"
        POS = "13", "Point of service"
        MEDICARE_B = "MB", "Medicare Part B"
        MEDICAID = "MC", "Medicaid"
        TRICARE = "CH", "TRICARE (CHAMPUS)"
        VA = "VA", "Veterans Affairs"
        WORKERS_COMP = "WC", "Workers' compensation"
        SELF_PAY = "09", "Self-pay"
        OTHER = "ZZ", "Mutually defined"

    name = models.CharField(max_length=200)
    edi_payer_id = models.CharField("EDI payer id", max_length=20, unique=True)
    claim_filing_code = models.CharField(
        max_length=2, choices=ClaimFilingCode.choices, default=ClaimFilingCode.COMMERCIAL
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Coverage(models.Model):
    class Priority(models.TextChoices):
        PRIMARY = "primary", "Primary"
        SECONDARY = "secondary", "Secondary"
        TERTIARY = "tertiary", "Tertiary"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="coverages")
    payer = models.ForeignKey(Payer, on_delete=models.PROTECT, related_name="coverages")
    member_id = models.CharField(max_length=60)
    group_number = models.CharField(max_length=60, blank=True)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.PRIMARY)
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True)
    copay_amount = models.DecimalField(
        max_digits=8, decimal_places=2, default=0, validators=[MinValueValidator(0)]
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["patient_id", "priority", "-effective_from"]
        constraints = [
            models.CheckConstraint(
                condition=Q(effective_to__isnull=True) | Q(effective_to__gte=F("effective_from")),
                name="coverage_dates_ordered",
            ),
            models.CheckConstraint(
                condition=Q(copay_amount__gte=0), name="coverage_copay_non_negative"
            ),
            models.UniqueConstraint(
                fields=["patient", "payer", "member_id"], name="coverage_unique_member"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.payer} {self.member_id} ({self.get_priority_display()})"

    def clean(self) -> None:
        # The same rule as `coverage_dates_ordered`, reported on the field that is wrong.
        if self.effective_to and self.effective_from and self.effective_to < self.effective_from:
            raise ValidationError(
                {"effective_to": "The coverage cannot end before it starts."}, code="dates"
            )


class ServiceCode(models.Model):
    """A CPT or HCPCS code the clinic bills. Only the code number ships; CPT descriptions are
    licensed, so each clinic writes its own label."""

    code = models.CharField(
        max_length=5,
        unique=True,
        validators=[
            RegexValidator(
                r"^([0-9]{4}[0-9AFMTU]|[A-V][0-9]{4})$", "A 5-character CPT or HCPCS code."
            )
        ],
    )
    label = models.CharField(max_length=200, help_text="The clinic's own wording.")
    unit_minutes = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Minutes per billing unit (15 for timed codes); empty for per-visit codes.",
    )
    requires_authorization = models.BooleanField(
        default=False, help_text="Payers require a prior authorization for this code."
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(unit_minutes__isnull=True) | Q(unit_minutes__gt=0),
                name="service_code_unit_minutes_positive",
            ),
            models.CheckConstraint(
                condition=Q(code__regex=r"^([0-9]{4}[0-9AFMTU]|[A-V][0-9]{4})$"),
                name="service_code_format",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.label}"

    @property
    def is_timed(self) -> bool:
        return self.unit_minutes is not None


class ClinicSettings(models.Model):
    """The clinic's own policies (one row per clinic schema, id 1). Scheduling and
    authorizations read them; the clinic admin edits them."""

    class UnitRounding(models.TextChoices):
        UP = "up", "Round up (any started unit counts)"
        NEAREST = "nearest", "Round to nearest (8-minute rule style)"
        DOWN = "down", "Round down (only whole units)"

    class AuthorizationPolicy(models.TextChoices):
        REFUSE = "refuse", "Refuse booking without an authorization"
        WARN = "warn", "Allow booking with a warning on the appointment"

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    slot_step_minutes = models.PositiveSmallIntegerField(default=15)
    late_cancel_hours = models.PositiveSmallIntegerField(
        default=24, help_text="Cancelling less than this many hours ahead is a late cancel."
    )
    unit_rounding = models.CharField(
        max_length=10, choices=UnitRounding.choices, default=UnitRounding.UP
    )
    authorization_policy = models.CharField(
        max_length=10, choices=AuthorizationPolicy.choices, default=AuthorizationPolicy.REFUSE
    )
    smart_booking_verified_only = models.BooleanField(
        default=False, help_text="Smart booking considers verified practitioners only."
    )
    telehealth_base_url = models.URLField(default="https://meet.clinic.localhost/")

    class Meta:
        verbose_name = "clinic settings"
        verbose_name_plural = "clinic settings"
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="clinic_settings_singleton"),
            models.CheckConstraint(
                condition=Q(slot_step_minutes__gte=5) & Q(slot_step_minutes__lte=120),
                name="clinic_settings_slot_step_5_to_120",
            ),
        ]

    def __str__(self) -> str:
        return "Clinic settings"

    @classmethod
    def load(cls) -> "ClinicSettings":
        obj, _ = cls.objects.get_or_create(id=1)
        return obj

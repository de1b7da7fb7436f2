"""A clinic's master data: locations, specialties, practitioners, patients, payers, coverage
and service codes. Rules that fit in the database are constraints here."""

import uuid
from datetime import date
from pathlib import PurePath

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Mod, Ord, Substr
from django.db.models.lookups import Exact
from django.utils import timezone

from clinic.inputs import stored_range
from clinic.tenancy import tenant_connection

from .validators import (
    validate_country,
    validate_currency,
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
    phone = models.CharField(
        max_length=40, blank=True, help_text="Required while the location takes bookings."
    )
    email = models.EmailField(blank=True)
    timezone = models.CharField(max_length=64, validators=[validate_timezone])
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # The patient pages send patients to "call the clinic" when a visit can no longer be
        # changed online: a location that takes bookings must say where to call.
        if self.is_active and not self.phone.strip():
            raise ValidationError(
                {"phone": "A location that takes bookings needs a phone number patients can call."},
                code="phone_required",
            )


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


class Condition(models.Model):
    """A condition or keyword patients search for ("autism", "ADHD", "stuttering"), the words
    they use for it (`synonyms`), and who treats it: the practitioners of `specialty_slugs`'
    specialties and the practitioners linked to it. The shipped list (`practice/conditions.py`)
    is loaded into every clinic; a clinic adds its own and changes them in the admin. The
    search matches the words by trigram similarity, so a misspelling finds it too."""

    name = models.CharField(max_length=120, unique=True)
    synonyms = ArrayField(
        models.CharField(max_length=120),
        default=list,
        blank=True,
        help_text="Other words patients use for it, separated by commas.",
    )
    specialty_slugs = ArrayField(
        models.SlugField(max_length=60),
        default=list,
        blank=True,
        help_text="The specialties (their slugs, separated by commas) whose practitioners "
        "treat it.",
    )
    practitioners = models.ManyToManyField(
        Practitioner,
        related_name="conditions",
        blank=True,
        help_text="Practitioners who treat it, whatever their specialties.",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


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
            # Not in the future is checked in Python (the database has no fixed "today").
            models.CheckConstraint(
                condition=stored_range("date_of_birth"), name="patient_dob_stored_range"
            ),
        ]
        indexes = [models.Index(fields=["last_name", "first_name"], name="patient_name_idx")]
        # The patient's data rights (practice/rights.py): a copy of everything held about
        # them, and erasure as anonymisation; granted per role in practice/grants.py.
        permissions = [
            ("export_patient", "Can export a patient's data"),
            ("erase_patient", "Can erase (anonymise) a patient"),
        ]

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


class ErasureRequest(models.Model):
    """A patient's request to be erased, and the erasure itself (practice/rights.py).

    A patient asks from their pages (`pending`); the clinic, which must first weigh its
    retention duties, carries it out (`erased`) or declines it with a reason (`declined`).
    Staff may also erase without a request: the row is then written `erased` at once. The
    row is the erasure's lasting record: who did it, when, why and what it changed
    (`summary`); it names the patient by id only once the patient is anonymised."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ERASED = "erased", "Erased"
        DECLINED = "declined", "Declined"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="erasures")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_at = models.DateTimeField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.TextField(blank=True, help_text="The patient's own words, if any.")
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=300, blank=True, help_text="Why staff erased or declined.")
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            # One open request at a time, and a patient is erased once.
            models.UniqueConstraint(
                fields=["patient"],
                condition=Q(status="pending"),
                name="erasure_one_pending_per_patient",
            ),
            models.UniqueConstraint(
                fields=["patient"], condition=Q(status="erased"), name="erasure_once_per_patient"
            ),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(decided_at__isnull=False),
                name="erasure_decided_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"Erasure of patient {self.patient_id} ({self.status})"


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


def private_storage():
    """Where insurance card images go: `STORAGES["private"]`, a directory no URL serves; staff
    download them through the admin, which checks the permission and records the read."""
    return storages["private"]


def card_upload_to(coverage: "Coverage", filename: str) -> str:
    # One directory per clinic schema; a random name (the patient's own file name may say
    # who they are).
    suffix = PurePath(filename).suffix.lower()[:5]
    return f"{tenant_connection.schema_name}/coverage-cards/{uuid.uuid4().hex}{suffix}"


class Coverage(models.Model):
    class Relationship(models.TextChoices):
        # The patient's relationship to the subscriber (X12 SBR02 / PAT01).
        SELF = "self", "Self"
        SPOUSE = "spouse", "Spouse"
        CHILD = "child", "Child"
        OTHER = "other", "Other"

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
    subscriber_relationship = models.CharField(
        "patient's relationship to the subscriber",
        max_length=10,
        choices=Relationship.choices,
        default=Relationship.SELF,
    )
    subscriber_name = models.CharField(
        max_length=200, blank=True, help_text="The policy holder, when not the patient."
    )
    subscriber_date_of_birth = models.DateField(null=True, blank=True)
    card_front = models.FileField(
        upload_to=card_upload_to, storage=private_storage, blank=True, max_length=200
    )
    card_back = models.FileField(
        upload_to=card_upload_to, storage=private_storage, blank=True, max_length=200
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
                condition=stored_range("effective_from") & stored_range("effective_to", null=True),
                name="coverage_dates_stored_range",
            ),
            models.CheckConstraint(
                condition=Q(copay_amount__gte=0), name="coverage_copay_non_negative"
            ),
            models.UniqueConstraint(
                fields=["patient", "payer", "member_id"], name="coverage_unique_member"
            ),
            models.CheckConstraint(
                condition=Q(subscriber_relationship="self") | ~Q(subscriber_name=""),
                name="coverage_subscriber_named",
                violation_error_message="Name the subscriber when it is not the patient.",
            ),
            models.CheckConstraint(
                condition=stored_range("subscriber_date_of_birth", null=True),
                name="coverage_subscriber_dob_stored_range",
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


class Guardian(models.Model):
    """A guardian or responsible party: who decides and pays for a minor (required at
    sign-up under 18), or for any patient who names one."""

    class Relationship(models.TextChoices):
        PARENT = "parent", "Parent"
        LEGAL_GUARDIAN = "legal_guardian", "Legal guardian"
        SPOUSE = "spouse", "Spouse"
        OTHER = "other", "Other responsible party"

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="guardians")
    name = models.CharField(max_length=200)
    relationship = models.CharField(max_length=20, choices=Relationship.choices)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    is_responsible_party = models.BooleanField(
        default=True, help_text="Receives the statements and signs for the patient."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["patient_id", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="guardian_named"),
            models.CheckConstraint(
                condition=~Q(phone="") | ~Q(email=""), name="guardian_reachable"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_relationship_display()})"


class ConsentText(models.Model):
    """One version of a consent's wording. A new wording is a new version (the rows a patient
    signed never change); the newest active version of each kind is what sign-up asks."""

    class Kind(models.TextChoices):
        TREATMENT = "treatment", "Consent to treatment"
        PRIVACY = "privacy", "Notice of privacy practices"
        FINANCIAL = "financial", "Financial responsibility"
        TELEHEALTH = "telehealth", "Telehealth consent"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    version = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "version"], name="consent_text_version_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="consent_text_version_1_up"),
        ]

    def __str__(self) -> str:
        return f"{self.title} (v{self.version})"


class PatientConsent(models.Model):
    """A patient's signature on one version of a consent: who signed (the typed name, the
    account), when; never edited, never deleted with the text (PROTECT)."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="consents")
    consent_text = models.ForeignKey(ConsentText, on_delete=models.PROTECT, related_name="+")
    signed_name = models.CharField(max_length=200)
    signed_at = models.DateTimeField()
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["patient_id", "signed_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "consent_text"], name="patient_consent_once_per_version"
            ),
            models.CheckConstraint(condition=~Q(signed_name=""), name="patient_consent_signed"),
        ]

    def __str__(self) -> str:
        return f"{self.consent_text} signed {self.signed_at:%Y-%m-%d}"


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

    class Locale(models.TextChoices):
        # How pages, emails and statements write dates, times and money.
        EN_US = "en-US", "English (United States)"
        EN_IE = "en-IE", "English (Ireland)"
        EN_GB = "en-GB", "English (United Kingdom)"

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    currency = models.CharField(
        max_length=3,
        default="USD",
        validators=[validate_currency],
        help_text="ISO 4217 code of the clinic's prices and payments (USD, EUR...).",
    )
    locale = models.CharField(max_length=5, choices=Locale.choices, default=Locale.EN_US)
    slot_step_minutes = models.PositiveSmallIntegerField(default=15)
    late_cancel_hours = models.PositiveSmallIntegerField(
        default=24, help_text="Cancelling less than this many hours ahead is a late cancel."
    )
    staff_min_notice_minutes = models.PositiveIntegerField(
        default=0,
        help_text="How far ahead staff must book or move a visit (0: any time from now, "
        "walk-ins included). Patients keep each visit type's own minimum notice.",
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
    # What the patient pages give when they say "call the clinic" (with the location's own).
    phone = models.CharField(
        "clinic phone", max_length=40, blank=True, help_text="The front desk's main number."
    )
    email = models.EmailField("clinic email", blank=True)
    late_change_fee = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="Charged for a cancellation inside the late-cancel window or a no-show, in "
        "the clinic's currency; empty when there is none. Patients are told before they book.",
    )
    require_staff_two_factor = models.BooleanField(
        default=False,
        help_text="Staff enter a code from an authenticator app (TOTP) after their password, "
        "in the admin and for API tokens; each enrols on their next page. Patients are never "
        "asked.",
    )
    waitlist_hold_minutes = models.PositiveSmallIntegerField(
        default=30,
        validators=[MinValueValidator(5), MaxValueValidator(1440)],
        help_text="How long a slot freed by a cancellation is held for the waitlist patient it "
        "is offered to before it passes to the next one (5 to 1,440 minutes).",
    )

    class Meta:
        verbose_name = "clinic settings"
        verbose_name_plural = "clinic settings"
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="clinic_settings_singleton"),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="clinic_settings_currency_format"
            ),
            models.CheckConstraint(
                condition=Q(slot_step_minutes__gte=5) & Q(slot_step_minutes__lte=120),
                name="clinic_settings_slot_step_5_to_120",
            ),
            models.CheckConstraint(
                condition=Q(late_change_fee__isnull=True) | Q(late_change_fee__gte=0),
                name="clinic_settings_late_change_fee_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(waitlist_hold_minutes__gte=5) & Q(waitlist_hold_minutes__lte=1440),
                name="clinic_settings_waitlist_hold_5_to_1440",
            ),
        ]

    def __str__(self) -> str:
        return "Clinic settings"

    @classmethod
    def load(cls) -> "ClinicSettings":
        obj, _ = cls.objects.get_or_create(id=1)
        return obj

"""Billing: what a clinic charges, what it claims from payers, and the money that comes back.

The loop is closed in the data: a charge is made from one completed visit (and the
authorization units that visit consumed), a claim line bills one charge, a remittance line pays
one claim line, and every amount owed or paid is a row of the money ledger. Balances are sums of
the ledger, never stored numbers: the ledger is append-only (a trigger refuses UPDATE and
DELETE), a correction is a new row that reverses an old one. A submitted claim's lines are
frozen by a trigger too. Amounts are Decimal with two places (every currency the clinics use);
the clinic's currency is `practice.ClinicSettings.currency`.
"""

from typing import Any

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import ArrayField, DateRangeField, RangeOperators
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce

from authorizations.models import Authorization
from clinic.inputs import stored_range
from practice.models import Coverage, Patient, Payer, Practitioner, ServiceCode
from practice.validators import validate_country, validate_npi
from scheduling.models import Appointment


def money_field(verbose_name: str | None = None, **kwargs: Any) -> models.DecimalField:
    """An amount of money: two places, up to 9,999,999,999.99."""
    return models.DecimalField(verbose_name, None, 12, 2, **kwargs)


# ICD-10-CM as written by clinicians: a letter, a digit, a digit or letter, then up to four
# characters after the dot (the dot is dropped in X12).
ICD10CM_PATTERN = r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$"
# Up to four two-character procedure modifiers, joined by ":" (HM, 95, GT, 59...).
MODIFIERS_PATTERN = r"^([A-Z0-9]{2}(:[A-Z0-9]{2}){0,3})?$"
PLACE_OF_SERVICE_PATTERN = r"^[0-9]{2}$"
# Ten digits; the check digit (Luhn over 80840 + the first nine) is validate_npi's and the
# scrubber's: a CHECK holds the shape.
NPI_PATTERN = r"^[0-9]{10}$"

validate_icd10cm = RegexValidator(
    ICD10CM_PATTERN, "An ICD-10-CM code: a letter, two characters, then a dot and up to four."
)
validate_modifiers = RegexValidator(
    MODIFIERS_PATTERN, "Up to four two-character modifiers separated by ':' (e.g. HM:95)."
)
validate_place_of_service = RegexValidator(
    PLACE_OF_SERVICE_PATTERN, "A two-digit CMS place of service code (11 office, 02/10 telehealth)."
)


class BillingProfile(models.Model):
    """The clinic as a billing provider and submitter (one row per clinic schema, id 1): what
    every 837P names in its envelope and 2010AA loop."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    legal_name = models.CharField(max_length=60, blank=True)
    npi = models.CharField("group NPI", max_length=10, blank=True, validators=[validate_npi])
    tax_id = models.CharField(
        "tax id (EIN)",
        max_length=9,
        blank=True,
        validators=[RegexValidator(r"^[0-9]{9}$", "Nine digits, no dash.")],
    )
    taxonomy = models.CharField(max_length=10, blank=True)
    address_line1 = models.CharField(max_length=55, blank=True)
    address_line2 = models.CharField(max_length=55, blank=True)
    city = models.CharField(max_length=30, blank=True)
    state = models.CharField(
        max_length=2, blank=True, help_text="Two letters; US and Canadian addresses only."
    )
    postal_code = models.CharField(max_length=15, blank=True)
    country = models.CharField(
        max_length=2, default="US", validators=[validate_country], help_text="ISO 3166-1 alpha-2."
    )
    contact_name = models.CharField(max_length=60, blank=True)
    contact_phone = models.CharField(max_length=20, blank=True)
    submitter_id = models.CharField(
        max_length=15, blank=True, help_text="Our id at the clearinghouse (ISA06, 1000A NM109)."
    )
    receiver_name = models.CharField(max_length=60, blank=True)
    receiver_id = models.CharField(max_length=15, blank=True, help_text="ISA08 and 1000B NM109.")
    timely_filing_days = models.PositiveSmallIntegerField(
        default=90, help_text="Days after the visit a payer accepts a claim, unless it says less."
    )
    production = models.BooleanField(default=False, help_text="ISA15: P when set, T otherwise.")
    # Which procedure modifier a rendering practitioner's credential adds to their charges
    # (their `title`, e.g. {"BCBA": "HO", "BCaBA": "HN", "RBT": "HM"}); empty: none added.
    credential_modifiers = models.JSONField(
        default=dict,
        blank=True,
        help_text='Practitioner title → modifier, e.g. {"BCBA": "HO", "RBT": "HM"}.',
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="billing_profile_singleton"),
        ]

    def __str__(self) -> str:
        return self.legal_name or "Billing profile"


class PayerRules(models.Model):
    """What one payer asks of the claims it receives."""

    payer = models.OneToOneField(Payer, on_delete=models.CASCADE, related_name="billing_rules")
    timely_filing_days = models.PositiveSmallIntegerField(null=True, blank=True)
    requires_authorization = models.BooleanField(
        default=True, help_text="Claims for codes that need one carry an authorization number."
    )

    class Meta:
        verbose_name_plural = "payer rules"

    def __str__(self) -> str:
        return f"Rules of {self.payer}"


class FeeSchedule(models.Model):
    """Prices in force between two dates: the clinic's default (self-pay) when `payer` is
    empty, otherwise one payer's. Two schedules of one payer never overlap in time."""

    name = models.CharField(max_length=120)
    payer = models.ForeignKey(
        Payer, null=True, blank=True, on_delete=models.PROTECT, related_name="fee_schedules"
    )
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True, help_text="Empty: until replaced.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["payer_id", "-effective_from"]
        constraints = [
            models.CheckConstraint(
                condition=Q(effective_to__isnull=True) | Q(effective_to__gte=F("effective_from")),
                name="fee_schedule_dates_ordered",
            ),
            models.CheckConstraint(
                condition=stored_range("effective_from") & stored_range("effective_to", null=True),
                name="fee_schedule_dates_stored_range",
            ),
            ExclusionConstraint(
                name="fee_schedule_no_overlap_per_payer",
                expressions=[
                    (Coalesce("payer_id", 0), RangeOperators.EQUAL),
                    (
                        models.Func(
                            F("effective_from"),
                            F("effective_to"),
                            models.Value("[]"),
                            function="daterange",
                            output_field=DateRangeField(),
                        ),
                        RangeOperators.OVERLAPS,
                    ),
                ],
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Fee(models.Model):
    """The price of one service code with one set of modifiers in a schedule, per unit."""

    schedule = models.ForeignKey(FeeSchedule, on_delete=models.CASCADE, related_name="fees")
    service_code = models.ForeignKey(ServiceCode, on_delete=models.PROTECT, related_name="fees")
    modifiers = models.CharField(max_length=11, blank=True, validators=[validate_modifiers])
    charge_per_unit = money_field(validators=[MinValueValidator(0)])
    allowed_per_unit = money_field(
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="What the payer is expected to allow; underpayments are measured against it.",
    )

    class Meta:
        ordering = ["schedule_id", "service_code__code", "modifiers"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "service_code", "modifiers"], name="fee_unique_per_schedule"
            ),
            models.CheckConstraint(
                condition=Q(charge_per_unit__gte=0)
                & (Q(allowed_per_unit__isnull=True) | Q(allowed_per_unit__gte=0)),
                name="fee_amounts_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(modifiers__regex=MODIFIERS_PATTERN), name="fee_modifiers_format"
            ),
        ]

    def __str__(self) -> str:
        suffix = f"-{self.modifiers}" if self.modifiers else ""
        return f"{self.service_code.code}{suffix} {self.charge_per_unit}"


class DiagnosisCode(models.Model):
    """An ICD-10-CM code a clinic loaded from the CMS code file (`manage.py
    billing_load_icd10`). None ship: when the table is empty, codes are checked by format only."""

    code = models.CharField(max_length=8, primary_key=True, validators=[validate_icd10cm])
    description = models.CharField(max_length=300)

    def __str__(self) -> str:
        return f"{self.code} {self.description}"


class Episode(models.Model):
    """An episode of care: why a patient is treated (ranked diagnoses), who referred them, for
    which dates and under which coverage (none: self-pay)."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        CLOSED = "closed", "Closed"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="episodes")
    coverage = models.ForeignKey(
        Coverage, null=True, blank=True, on_delete=models.PROTECT, related_name="episodes"
    )
    title = models.CharField(max_length=200, blank=True)
    referring_provider_name = models.CharField(max_length=120, blank=True)
    referring_provider_npi = models.CharField(max_length=10, blank=True, validators=[validate_npi])
    supervising = models.ForeignKey(
        Practitioner,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Who supervises the care (e.g. the BCBA over an RBT): named on its charges and "
        "claims (837P 2310D).",
    )
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["patient_id", "-start_date", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")),
                name="episode_dates_ordered",
            ),
            models.CheckConstraint(
                condition=stored_range("start_date") & stored_range("end_date", null=True),
                name="episode_dates_stored_range",
            ),
        ]
        indexes = [models.Index(fields=["patient", "status"], name="episode_patient")]

    def __str__(self) -> str:
        return self.title or f"Episode from {self.start_date}"


class EpisodeDiagnosis(models.Model):
    """One diagnosis of an episode, ranked: rank 1 is the principal diagnosis (claim HI01)."""

    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="diagnoses")
    rank = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(12)]
    )
    code = models.CharField(max_length=8, validators=[validate_icd10cm])

    class Meta:
        ordering = ["episode_id", "rank"]
        verbose_name_plural = "episode diagnoses"
        constraints = [
            models.UniqueConstraint(fields=["episode", "rank"], name="episode_diagnosis_rank"),
            models.UniqueConstraint(fields=["episode", "code"], name="episode_diagnosis_code"),
            models.CheckConstraint(
                condition=Q(rank__gte=1) & Q(rank__lte=12), name="episode_diagnosis_rank_1_to_12"
            ),
            models.CheckConstraint(
                condition=Q(code__regex=ICD10CM_PATTERN), name="episode_diagnosis_icd10cm"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rank}. {self.code}"


class Charge(models.Model):
    """What one completed visit costs for one service code: units, modifiers, place of service,
    diagnosis pointers into its episode, the providers and the authorization it was rendered
    under. One live charge per visit and code (a partial unique index); a void charge stays."""

    class Status(models.TextChoices):
        OPEN = "open", "Open (not on a claim)"
        BILLED = "billed", "On a claim"
        SELF_PAY = "self_pay", "Self-pay (patient billed)"
        VOID = "void", "Void"

    appointment = models.ForeignKey(Appointment, on_delete=models.PROTECT, related_name="charges")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="charges")
    episode = models.ForeignKey(Episode, on_delete=models.PROTECT, related_name="charges")
    coverage = models.ForeignKey(
        Coverage, null=True, blank=True, on_delete=models.PROTECT, related_name="charges"
    )
    payer = models.ForeignKey(
        Payer, null=True, blank=True, on_delete=models.PROTECT, related_name="charges"
    )
    fee = models.ForeignKey(Fee, null=True, on_delete=models.PROTECT, related_name="charges")
    service_code = models.ForeignKey(ServiceCode, on_delete=models.PROTECT, related_name="charges")
    service_date = models.DateField()
    units = models.PositiveIntegerField()
    modifiers = models.CharField(max_length=11, blank=True, validators=[validate_modifiers])
    place_of_service = models.CharField(max_length=2, validators=[validate_place_of_service])
    diagnosis_pointers = ArrayField(models.PositiveSmallIntegerField(), size=4)
    amount = money_field()
    expected_allowed = money_field(null=True, blank=True)
    rendering = models.ForeignKey(Practitioner, on_delete=models.PROTECT, related_name="charges")
    rendering_npi = models.CharField(max_length=10, blank=True, validators=[validate_npi])
    supervising = models.ForeignKey(
        Practitioner, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    supervising_npi = models.CharField(
        max_length=10,
        blank=True,
        validators=[validate_npi],
        help_text="The supervising provider's NPI (837P 2310D), when a supervisor is named.",
    )
    authorization = models.ForeignKey(
        Authorization, null=True, blank=True, on_delete=models.PROTECT, related_name="charges"
    )
    authorization_number = models.CharField(max_length=60, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    void_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-service_date", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["appointment", "service_code"],
                condition=~Q(status="void"),
                name="charge_one_live_per_visit_and_code",
            ),
            models.CheckConstraint(condition=Q(units__gt=0), name="charge_units_positive"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="charge_amount_non_negative"),
            models.CheckConstraint(
                condition=Q(modifiers__regex=MODIFIERS_PATTERN), name="charge_modifiers_format"
            ),
            models.CheckConstraint(
                condition=Q(place_of_service__regex=PLACE_OF_SERVICE_PATTERN),
                name="charge_place_of_service_format",
            ),
            models.CheckConstraint(
                condition=Q(diagnosis_pointers__len__gte=1) & Q(diagnosis_pointers__len__lte=4),
                name="charge_diagnosis_pointers_1_to_4",
            ),
            models.CheckConstraint(
                condition=Q(payer__isnull=True, coverage__isnull=True)
                | Q(payer__isnull=False, coverage__isnull=False),
                name="charge_payer_with_coverage",
            ),
            models.CheckConstraint(
                condition=stored_range("service_date"), name="charge_service_date_stored_range"
            ),
            models.CheckConstraint(
                condition=Q(supervising_npi="")
                | Q(supervising__isnull=False, supervising_npi__regex=NPI_PATTERN),
                name="charge_supervising_npi",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "payer", "service_date"], name="charge_status_payer"),
            models.Index(fields=["patient", "service_date"], name="charge_patient"),
        ]

    def __str__(self) -> str:
        return f"{self.service_code.code} × {self.units} on {self.service_date}"


class Submission(models.Model):
    """One 837P interchange sent to the clearinghouse. Its id is its ISA, GS and ST control
    numbers, so they are unique per clinic by construction."""

    class Acknowledgement(models.TextChoices):
        AWAITING = "awaiting", "Awaiting 999"
        ACCEPTED = "accepted", "Accepted (999 A/E)"
        REJECTED = "rejected", "Rejected (999 R)"

    x12 = models.TextField()
    claim_count = models.PositiveIntegerField()
    total_charge = money_field()
    acknowledgement = models.CharField(
        max_length=8, choices=Acknowledgement.choices, default=Acknowledgement.AWAITING
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(id__lte=999_999_999), name="submission_control_number_9_digits"
            ),
        ]

    def __str__(self) -> str:
        return f"837P {self.id:09d}"


class Claim(models.Model):
    """A claim to one payer for one patient's charges by one rendering provider.

    draft → ready (scrubbed clean) → submitted → accepted / rejected (999, 277CA) → paid /
    partially paid / denied (derived from the money posted) → appealed. A replacement
    (frequency 7) or void (frequency 8) is a new claim pointing at the one it replaces, which
    becomes `replaced` / `voided`. Once submitted, its lines never change (a trigger)."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        READY = "ready", "Ready"
        SUBMITTED = "submitted", "Submitted"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        PAID = "paid", "Paid"
        PARTIALLY_PAID = "partially_paid", "Partially paid"
        DENIED = "denied", "Denied"
        APPEALED = "appealed", "Appealed"
        REPLACED = "replaced", "Replaced"
        VOIDED = "voided", "Voided"

    class Frequency(models.TextChoices):
        ORIGINAL = "1", "Original"
        REPLACEMENT = "7", "Replacement"
        VOID = "8", "Void"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="claims")
    payer = models.ForeignKey(Payer, on_delete=models.PROTECT, related_name="claims")
    coverage = models.ForeignKey(Coverage, on_delete=models.PROTECT, related_name="claims")
    episode = models.ForeignKey(Episode, on_delete=models.PROTECT, related_name="claims")
    rendering = models.ForeignKey(Practitioner, on_delete=models.PROTECT, related_name="claims")
    # The supervisor of the rendering provider (e.g. the BCBA over an RBT), from the charges:
    # one per claim (charges are batched by it), written as 837P loop 2310D NM1*DQ.
    supervising = models.ForeignKey(
        Practitioner, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    supervising_npi = models.CharField(
        max_length=10, blank=True, validators=[validate_npi], help_text="2310D NM109."
    )
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.DRAFT)
    frequency = models.CharField(
        max_length=1, choices=Frequency.choices, default=Frequency.ORIGINAL
    )
    replaces = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replacements"
    )
    total_charge = money_field()
    payer_claim_number = models.CharField(
        max_length=50, blank=True, help_text="The payer's own number (277CA, 835 CLP07)."
    )
    submission = models.ForeignKey(
        Submission, null=True, blank=True, on_delete=models.PROTECT, related_name="claims"
    )
    findings = models.JSONField(default=list, blank=True, help_text="The last scrub's findings.")
    status_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        # Submitting (and replacing or voiding) sends the claim to the payer: a biller's act.
        permissions = [("submit_claim", "Can submit, replace and void claims")]
        constraints = [
            models.CheckConstraint(
                condition=Q(total_charge__gte=0), name="claim_total_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(frequency="1", replaces__isnull=True)
                | (Q(frequency__in=["7", "8"]) & Q(replaces__isnull=False)),
                name="claim_replacement_names_original",
            ),
            models.CheckConstraint(
                condition=Q(submission__isnull=True) | ~Q(status__in=["draft", "ready"]),
                name="claim_submitted_has_left_draft",
            ),
            models.CheckConstraint(
                condition=Q(supervising_npi="")
                | Q(supervising__isnull=False, supervising_npi__regex=NPI_PATTERN),
                name="claim_supervising_npi",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "payer", "-id"], name="claim_status_payer"),
            models.Index(fields=["patient", "-id"], name="claim_patient"),
        ]

    def __str__(self) -> str:
        return f"Claim {self.control_number}"

    @property
    def control_number(self) -> str:
        """CLM01, the patient control number the payer answers with (835 CLP01)."""
        return f"C{self.pk}"


class ClaimLine(models.Model):
    """One service line of a claim: one charge. Its id is the line item control number (REF*6R)
    the 835 answers with."""

    claim = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="lines")
    charge = models.ForeignKey(Charge, on_delete=models.PROTECT, related_name="claim_lines")
    number = models.PositiveSmallIntegerField()
    amount = money_field()
    units = models.PositiveIntegerField()

    class Meta:
        ordering = ["claim_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["claim", "number"], name="claim_line_number_unique"),
            models.UniqueConstraint(fields=["claim", "charge"], name="claim_line_charge_unique"),
            models.CheckConstraint(
                condition=Q(number__gte=1) & Q(number__lte=50), name="claim_line_number_1_to_50"
            ),
            models.CheckConstraint(condition=Q(units__gt=0), name="claim_line_units_positive"),
        ]

    def __str__(self) -> str:
        return f"Line {self.number} of claim {self.claim_id}"

    @property
    def line_ref(self) -> str:
        return str(self.pk)


class Remittance(models.Model):
    """One posted 835 transaction (a payment or advice). A (payer id, trace number) pair posts
    once: a unique constraint, so two concurrent imports of one file cannot both post."""

    payer = models.ForeignKey(
        Payer, null=True, blank=True, on_delete=models.PROTECT, related_name="remittances"
    )
    payer_identifier = models.CharField(max_length=50, help_text="TRN03 (or the 1000A id).")
    trace_number = models.CharField(max_length=50, help_text="TRN02: the check or EFT number.")
    payment_amount = money_field()
    payment_method = models.CharField(max_length=3, help_text="BPR04: ACH, CHK, NON...")
    payment_date = models.DateField(null=True, blank=True)
    x12 = models.TextField()
    file_name = models.CharField(max_length=200, blank=True)
    posted_at = models.DateTimeField(auto_now_add=True)
    posted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-posted_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["payer_identifier", "trace_number"], name="remittance_trace_posts_once"
            ),
        ]

    def __str__(self) -> str:
        return f"835 {self.trace_number}"


class RemittanceClaim(models.Model):
    """One claim payment of an 835 (CLP), matched to our claim, or left for a biller to match
    when the payer's reference finds nothing (`claim` empty: shown on the worklist)."""

    remittance = models.ForeignKey(Remittance, on_delete=models.CASCADE, related_name="claims")
    claim = models.ForeignKey(
        Claim, null=True, blank=True, on_delete=models.PROTECT, related_name="remittances"
    )
    patient_control_number = models.CharField(max_length=38)
    status_code = models.CharField(max_length=2, help_text="CLP02 (1, 2, 3, 4, 22...).")
    charge_amount = money_field()
    paid_amount = money_field()
    patient_responsibility = money_field(default=0)
    payer_claim_number = models.CharField(max_length=50, blank=True)

    class Meta:
        ordering = ["remittance_id", "id"]

    def __str__(self) -> str:
        return f"CLP {self.patient_control_number}"


class Payment(models.Model):
    """Money received from (or refunded to) a patient, at the desk or online, or a payer's
    payment posted from an 835. Its allocation to charges is in the ledger."""

    class Method(models.TextChoices):
        CASH = "cash", "Cash"
        CARD = "card", "Card"
        CHECK = "check", "Check"
        EFT = "eft", "EFT"
        ONLINE = "online", "Online (card)"

    class Kind(models.TextChoices):
        PAYMENT = "payment", "Payment"
        COPAY = "copay", "Copay"
        REFUND = "refund", "Refund"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    payer = models.ForeignKey(
        Payer, null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    remittance = models.OneToOneField(
        Remittance, null=True, blank=True, on_delete=models.PROTECT, related_name="payment"
    )
    appointment = models.ForeignKey(
        Appointment, null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    kind = models.CharField(max_length=7, choices=Kind.choices, default=Kind.PAYMENT)
    method = models.CharField(max_length=6, choices=Method.choices)
    amount = money_field()
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.SUCCEEDED)
    reference = models.CharField(max_length=100, blank=True, help_text="Check number, etc.")
    processor = models.CharField(max_length=40, blank=True)
    processor_id = models.CharField(max_length=100, blank=True)
    refund_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    idempotency_key = models.CharField(max_length=100, null=True, blank=True, unique=True)
    received_at = models.DateTimeField()
    taken_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(patient__isnull=False) | Q(payer__isnull=False),
                name="payment_from_patient_or_payer",
            ),
            models.CheckConstraint(
                condition=Q(kind="refund", refund_of__isnull=False)
                | (~Q(kind="refund") & Q(refund_of__isnull=True)),
                name="payment_refund_names_payment",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} ({self.get_method_display()})"


class WriteOffReason(models.TextChoices):
    """Why a biller writes an amount off (the payer's own reasons come as CARCs in 835s)."""

    CONTRACTUAL = "contractual", "Contractual (beyond the payer's allowed amount)"
    TIMELY_FILING = "timely_filing", "Timely filing limit missed"
    AUTHORIZATION = "authorization", "No authorization (not billable to the patient)"
    SMALL_BALANCE = "small_balance", "Small balance"
    BAD_DEBT = "bad_debt", "Bad debt (sent to collections or uncollectable)"
    CHARITY = "charity", "Charity care / financial hardship"
    COURTESY = "courtesy", "Courtesy (administrative)"


class LedgerEntry(models.Model):
    """One movement of money owed, append-only. `amount` is signed: positive adds to what the
    party owes (a charge, a transfer in, a refund, a reversal of a payment), negative takes from
    it (a payment, an adjustment, a transfer out). The party is the payer (with `payer` set) or
    the patient. A balance is the sum of its entries; nothing else holds one."""

    class Kind(models.TextChoices):
        CHARGE = "charge", "Charge"
        PAYMENT = "payment", "Payment"
        ADJUSTMENT = "adjustment", "Adjustment"
        TRANSFER = "transfer", "Transfer"
        REFUND = "refund", "Refund"
        OVERPAYMENT = "overpayment", "Overpayment"
        REVERSAL = "reversal", "Reversal"

    class Party(models.TextChoices):
        PAYER = "payer", "Payer"
        PATIENT = "patient", "Patient"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="ledger")
    party = models.CharField(max_length=7, choices=Party.choices)
    payer = models.ForeignKey(
        Payer, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger"
    )
    charge = models.ForeignKey(
        Charge, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger"
    )
    claim = models.ForeignKey(
        Claim, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger"
    )
    claim_line = models.ForeignKey(
        ClaimLine, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger"
    )
    remittance = models.ForeignKey(
        Remittance, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger"
    )
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger"
    )
    kind = models.CharField(max_length=11, choices=Kind.choices)
    amount = money_field()
    group_code = models.CharField(max_length=2, blank=True, help_text="CAS group: CO, PR, OA, PI.")
    reason_code = models.CharField(max_length=5, blank=True, help_text="CARC.")
    remark_codes = ArrayField(models.CharField(max_length=8), default=list, blank=True)
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    memo = models.CharField(max_length=300, blank=True)
    write_off_reason = models.CharField(
        max_length=14,
        choices=WriteOffReason.choices,
        blank=True,
        default="",
        db_default="",  # bulk COPY writers (835 posting) name no value for it
        help_text="Why a biller wrote the amount off (a manual adjustment).",
    )
    # A biller's transfer or write-off made through the API: the pair (or the one entry) of a
    # key answers a retried request; unique per party, so a pair shares its key.
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    posted_on = models.DateField(help_text="The accounting date (clinic's zone).")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_non_zero"),
            models.CheckConstraint(
                condition=Q(party="payer", payer__isnull=False)
                | Q(party="patient", payer__isnull=True),
                name="ledger_party_payer",
            ),
            models.CheckConstraint(
                condition=Q(group_code="") | Q(group_code__in=["CO", "PR", "OA", "PI", "CR"]),
                name="ledger_group_code",
            ),
            models.CheckConstraint(
                condition=stored_range("posted_on"), name="ledger_posted_on_stored_range"
            ),
            models.UniqueConstraint(
                fields=["idempotency_key", "party"],
                condition=Q(idempotency_key__isnull=False),
                name="ledger_idempotency_key_per_party",
            ),
            models.CheckConstraint(
                condition=Q(write_off_reason="") | Q(kind="adjustment"),
                name="ledger_write_off_reason_on_adjustment",
            ),
        ]
        indexes = [
            models.Index(fields=["patient", "party"], name="ledger_patient_party"),
            models.Index(fields=["charge", "party"], name="ledger_charge_party"),
            models.Index(fields=["claim"], name="ledger_claim"),
            # `/ledger-entries/` pages by (posted_on, id), newest first
            models.Index(fields=["posted_on", "id"], name="ledger_posted_on_id"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} ({self.party})"


class ChargeBalance(models.Model):
    """What one party still owes on one charge (or, with no charge, on one ledger entry of a
    patient's account), with the date its age counts from: derived from the ledger by a
    trigger on every ledger insert (migration 0003), never written by the code, so the A/R
    aging reads the open balances (a partial index) instead of summing the whole ledger.
    A trigger refuses any write that does not come from the ledger's trigger."""

    charge = models.ForeignKey(
        Charge, null=True, on_delete=models.DO_NOTHING, related_name="balances"
    )
    patient = models.ForeignKey(Patient, on_delete=models.DO_NOTHING, related_name="+")
    party = models.CharField(max_length=7, choices=LedgerEntry.Party.choices)
    payer = models.ForeignKey(Payer, null=True, on_delete=models.DO_NOTHING, related_name="+")
    age_date = models.DateField(help_text="The charge's service date (else the entry's date).")
    amount = money_field()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "charge", "party", Coalesce("payer", 0), name="charge_balance_per_party"
            ),
        ]
        indexes = [
            models.Index(
                fields=["age_date"],
                name="charge_balance_open",
                condition=~Q(amount=0),
                include=["party", "payer", "patient", "amount"],
            ),
            # a patient's open balances (the A/R rollup recounts them; a report's page sums them)
            models.Index(
                fields=["patient"],
                name="charge_balance_open_patient",
                condition=~Q(amount=0),
                include=["age_date", "amount"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.party} owes {self.amount} on charge {self.charge_id}"


class ProviderAdjustment(models.Model):
    """One provider-level adjustment of an 835 (a PLB pair: interest, a forward balance, a
    recoupment, a withholding...), posted to the clinic's account with the payer: not to any
    patient or charge. Append-only like the ledger (the same trigger). `amount` is signed as in
    the PLB: positive, the payer withheld it from the payment (e.g. WO, a recoupment of an
    earlier overpayment); negative, the payer paid it on top (e.g. L6 interest). So a
    remittance's payment = Σ its claim payments − Σ its provider adjustments, and what a payer
    has withheld from the clinic overall is the sum of its rows."""

    remittance = models.ForeignKey(
        Remittance, on_delete=models.PROTECT, related_name="provider_entries"
    )
    payer = models.ForeignKey(
        Payer, null=True, blank=True, on_delete=models.PROTECT, related_name="provider_entries"
    )
    provider = models.CharField(max_length=50, help_text="PLB01: the provider's id (NPI or TIN).")
    fiscal_period = models.DateField(null=True, blank=True, help_text="PLB02.")
    reason = models.CharField(max_length=2, help_text="PLB03-1, e.g. WO, L6, FB, 72.")
    reference = models.CharField(
        max_length=50, blank=True, help_text="PLB03-2: e.g. the claim a recoupment is for."
    )
    claim = models.ForeignKey(
        Claim,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="provider_adjustments",
        help_text="Our claim the reference names, when it names one.",
    )
    amount = money_field()
    segment = models.PositiveIntegerField(help_text="The PLB's segment number in its file.")
    posted_on = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["remittance_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(amount=0), name="provider_adjustment_amount_non_zero"
            ),
            models.CheckConstraint(
                condition=Q(reason__regex=r"^[0-9A-Z]{2}$"), name="provider_adjustment_reason"
            ),
            models.CheckConstraint(
                condition=stored_range("posted_on"), name="provider_adjustment_posted_on_range"
            ),
        ]
        indexes = [models.Index(fields=["payer", "posted_on"], name="provider_adjustment_payer")]

    def __str__(self) -> str:
        return f"PLB {self.reason} {self.amount}"


class ArDay(models.Model):
    """The A/R rolled up: what one party (one payer, or the patients as one) is owed on
    balances aged from one day, Σ `ChargeBalance` per (party, payer, age date): a few rows per
    day whatever the number of charges, so the aging sums thousands of rows, not every open
    charge. Kept by a statement trigger on the ledger's inserts (migration 0007), which takes
    its rows in key order; written by nothing else (a trigger refuses it)."""

    party = models.CharField(max_length=7, choices=LedgerEntry.Party.choices)
    payer = models.ForeignKey(Payer, null=True, on_delete=models.DO_NOTHING, related_name="+")
    age_date = models.DateField()
    amount = money_field()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "party", Coalesce("payer", 0), "age_date", name="ar_day_per_party"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.party} {self.payer_id or ''} owed {self.amount} aged from {self.age_date}"


class ArPatient(models.Model):
    """A patient's A/R: their balances' sum (payers' and own share) and how many are open,
    recounted from `ChargeBalance` by the ledger's statement trigger (migration 0007) under the
    row's lock, so the aging by patient pages through patients by total without summing every
    open charge. Written by nothing else (a trigger refuses it)."""

    patient = models.OneToOneField(
        Patient, primary_key=True, on_delete=models.DO_NOTHING, related_name="+"
    )
    amount = money_field()
    open_balances = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(
                F("amount").desc(),
                "patient",
                name="ar_patient_owing",
                condition=Q(open_balances__gt=0),
            ),
        ]

    def __str__(self) -> str:
        return f"patient {self.patient_id} owes {self.amount}"


# --- No-show and late-cancellation fees (billing/visit_fees.py) -------------------------------


class MissedVisitPolicy(models.Model):
    """What a no-show or a late cancellation of one visit type costs (or of every type without
    a row of its own: `appointment_type` empty), in the clinic's currency. A late cancellation
    made within `grace_minutes` of booking is free (a visit booked inside the late window can
    still be undone). Without any row, the clinic settings' single `late_change_fee` applies to
    both. Patients read it before they book."""

    appointment_type = models.OneToOneField(
        "scheduling.AppointmentType",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="missed_visit_policy",
        help_text="Empty: every visit type without a policy of its own.",
    )
    no_show_fee = money_field(validators=[MinValueValidator(0)])
    late_cancel_fee = money_field(validators=[MinValueValidator(0)])
    grace_minutes = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(7 * 24 * 60)],
        help_text="A late cancellation this many minutes or less after booking is not charged.",
    )

    class Meta:
        verbose_name = "no-show and late-cancel policy"
        verbose_name_plural = "no-show and late-cancel policies"
        constraints = [
            models.UniqueConstraint(
                fields=["appointment_type"],
                name="missed_visit_policy_once_per_type",
                nulls_distinct=False,  # one clinic-wide row too
            ),
            models.CheckConstraint(
                condition=Q(no_show_fee__gte=0) & Q(late_cancel_fee__gte=0),
                name="missed_visit_policy_fees_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(grace_minutes__lte=7 * 24 * 60),
                name="missed_visit_policy_grace_within_a_week",
            ),
        ]

    def __str__(self) -> str:
        kind = self.appointment_type.name if self.appointment_type else "Every visit type"
        return f"{kind}: no-show {self.no_show_fee}, late cancel {self.late_cancel_fee}"


class MissedVisitFee(models.Model):
    """A no-show or late-cancellation fee charged to a patient's account: one ledger entry
    (`entry`, the patient owes it), reversed by a second when staff undo the no-show or waive
    the fee (with a reason). At most one fee in force per visit (a partial unique index), so a
    visit marked twice, or by two desks at once, is charged once."""

    class Kind(models.TextChoices):
        NO_SHOW = "no_show", "No-show"
        LATE_CANCEL = "late_cancel", "Late cancellation"

    class Status(models.TextChoices):
        CHARGED = "charged", "Charged"
        REVERSED = "reversed", "Reversed (no-show undone)"
        WAIVED = "waived", "Waived"

    appointment = models.ForeignKey(
        Appointment, on_delete=models.PROTECT, related_name="missed_visit_fees"
    )
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="missed_visit_fees")
    kind = models.CharField(max_length=11, choices=Kind.choices)
    amount = money_field()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.CHARGED)
    entry = models.OneToOneField(
        LedgerEntry, on_delete=models.PROTECT, related_name="missed_visit_fee"
    )
    reversal = models.OneToOneField(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=300, blank=True, help_text="Why it was waived.")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("waive_missedvisitfee", "Can waive no-show and late-cancel fees")]
        constraints = [
            models.UniqueConstraint(
                fields=["appointment"],
                condition=Q(status="charged"),
                name="missed_visit_fee_once_per_visit",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="missed_visit_fee_positive"),
            models.CheckConstraint(
                condition=Q(status="charged", reversal__isnull=True)
                | (~Q(status="charged") & Q(reversal__isnull=False)),
                name="missed_visit_fee_reversed_iff_not_charged",
            ),
            models.CheckConstraint(
                condition=~Q(status="waived") | ~Q(reason=""),
                name="missed_visit_fee_waived_with_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} fee {self.amount} ({self.status})"

"""Insurance authorizations and their unit ledger.

A payer approves N units of one or more service codes between two dates. Every scheduled visit
reserves units, every rendered visit consumes them, and PostgreSQL guarantees that a line is
never overdrawn: `units_scheduled + units_used <= units_authorized`, both counters >= 0. Each
counter always equals the sum of its ledger rows (UnitReservation), written in the same
transaction. This app knows nothing of appointments; an appointment points at its reservation.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from clinic.inputs import stored_range
from practice.models import Coverage, Patient, ServiceCode


class Authorization(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACTIVE = "active", "Active"
        EXPIRED = "expired", "Expired"
        EXHAUSTED = "exhausted", "Exhausted"
        CANCELLED = "cancelled", "Cancelled"
        DENIED = "denied", "Denied"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="authorizations")
    coverage = models.ForeignKey(Coverage, on_delete=models.PROTECT, related_name="authorizations")
    number = models.CharField("authorization number", max_length=60)
    start_date = models.DateField()
    end_date = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    alert_threshold_percent = models.PositiveSmallIntegerField(
        default=80, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    alert_days_before_expiry = models.PositiveSmallIntegerField(default=30)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["end_date", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__gte=F("start_date")), name="authorization_dates_ordered"
            ),
            models.CheckConstraint(
                condition=stored_range("start_date", "end_date"),
                name="authorization_dates_stored_range",
            ),
            models.CheckConstraint(
                condition=Q(alert_threshold_percent__gte=1) & Q(alert_threshold_percent__lte=100),
                name="authorization_threshold_percent",
            ),
            models.UniqueConstraint(
                fields=["coverage", "number"], name="authorization_number_unique_per_coverage"
            ),
        ]
        indexes = [models.Index(fields=["patient", "status", "end_date"], name="auth_patient")]

    def __str__(self) -> str:
        return f"Auth {self.number} ({self.start_date} – {self.end_date})"


class AuthorizationLine(models.Model):
    authorization = models.ForeignKey(Authorization, on_delete=models.CASCADE, related_name="lines")
    service_codes = models.ManyToManyField(ServiceCode, related_name="authorization_lines")
    units_authorized = models.PositiveIntegerField()
    weekly_cap = models.PositiveIntegerField(
        null=True, blank=True, help_text="At most this many units in one week (Mon–Sun)."
    )
    units_scheduled = models.IntegerField(default=0)
    units_used = models.IntegerField(default=0)

    class Meta:
        ordering = ["authorization_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(units_scheduled__gte=0) & Q(units_used__gte=0),
                name="authorization_line_counters_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(units_scheduled__lte=F("units_authorized") - F("units_used")),
                name="authorization_line_not_overdrawn",
            ),
            models.CheckConstraint(
                condition=Q(units_authorized__gt=0), name="authorization_line_units_positive"
            ),
            models.CheckConstraint(
                condition=Q(weekly_cap__isnull=True) | Q(weekly_cap__gt=0),
                name="authorization_line_weekly_cap_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.units_authorized} units"

    @property
    def units_remaining(self) -> int:
        return self.units_authorized - self.units_scheduled - self.units_used

    @property
    def percent_used(self) -> float:
        taken = self.units_scheduled + self.units_used
        return round(100 * taken / self.units_authorized, 1) if self.units_authorized else 0.0


class UnitReservation(models.Model):
    """One ledger entry: `units` of a line, reserved (scheduled), consumed (used) or released."""

    class State(models.TextChoices):
        RESERVED = "reserved", "Reserved"
        CONSUMED = "consumed", "Consumed"
        RELEASED = "released", "Released"

    line = models.ForeignKey(AuthorizationLine, on_delete=models.PROTECT, related_name="ledger")
    units = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.RESERVED)
    service_date = models.DateField(help_text="The day of the visit the units are for.")
    reference = models.CharField(max_length=100, blank=True, help_text="e.g. appointment:123")
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    consumed_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(units__gt=0), name="unit_reservation_units_positive"
            ),
            models.CheckConstraint(
                condition=stored_range("service_date"), name="unit_reservation_stored_range"
            ),
            models.UniqueConstraint(
                fields=["line", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="unit_reservation_idempotency_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["line", "state", "service_date"], name="unit_res_line_state"),
        ]

    def __str__(self) -> str:
        return f"{self.units} units {self.state} on {self.service_date}"


class AuthorizationRequest(models.Model):
    """A patient's (or staff's) request for an assessment / authorization of a service code,
    worked by the front desk from a queue: approved (the authorization it created) or declined
    with a reason. The patient sees its status on their pages. One open request per patient
    and code; a decided one keeps who decided and when."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the clinic"
        APPROVED = "approved", "Approved"
        DECLINED = "declined", "Declined"

    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="authorization_requests"
    )
    service_code = models.ForeignKey(ServiceCode, on_delete=models.PROTECT, related_name="+")
    coverage = models.ForeignKey(
        Coverage, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    visit_name = models.CharField(
        max_length=200, blank=True, help_text="The visit type the patient wanted to book."
    )
    message = models.TextField(blank=True, help_text="The patient's own words, if any.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_at = models.DateTimeField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decline_reason = models.CharField(max_length=300, blank=True)
    authorization = models.ForeignKey(
        Authorization, null=True, blank=True, on_delete=models.PROTECT, related_name="requests"
    )

    class Meta:
        ordering = ["requested_at", "id"]  # the queue: oldest first
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "service_code"],
                condition=Q(status="pending"),
                name="authorization_request_one_pending",
            ),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(decided_at__isnull=False),
                name="authorization_request_decided_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="approved") | Q(authorization__isnull=False),
                name="authorization_request_approved_has_authorization",
            ),
            models.CheckConstraint(
                condition=~Q(status="declined") | ~Q(decline_reason=""),
                name="authorization_request_declined_has_reason",
            ),
        ]
        indexes = [models.Index(fields=["status", "requested_at"], name="auth_request_queue")]

    def __str__(self) -> str:
        return f"Authorization request {self.pk} ({self.get_status_display()})"

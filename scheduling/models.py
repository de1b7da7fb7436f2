"""Hours, time off, appointment types, appointments and series.

The one rule that matters most lives in PostgreSQL: a practitioner never has two active
appointments whose blocked ranges (the visit widened by its buffers) overlap. An exclusion
constraint enforces it for every writer, raw SQL included.
"""

import secrets
import uuid

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField, RangeOperators
from django.db import models
from django.db.models import F, Q

from clinic.inputs import STORED_FIRST_DAY, STORED_LAST_DAY, stored_range
from practice import formats
from practice.models import Location, Patient, Practitioner, ServiceCode


class AppointmentType(models.Model):
    class Mode(models.TextChoices):
        IN_PERSON = "in_person", "In person"
        TELEHEALTH = "telehealth", "Telehealth"
        EITHER = "either", "In person or telehealth"

    name = models.CharField(max_length=120)
    service_code = models.ForeignKey(
        ServiceCode, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    duration_minutes = models.PositiveSmallIntegerField()
    buffer_before_minutes = models.PositiveSmallIntegerField(default=0)
    buffer_after_minutes = models.PositiveSmallIntegerField(default=0)
    min_notice_minutes = models.PositiveIntegerField(
        default=120, help_text="Bookings must be made at least this long before the start."
    )
    horizon_days = models.PositiveSmallIntegerField(
        default=90, help_text="Bookings may be made at most this many days ahead."
    )
    mode = models.CharField(max_length=12, choices=Mode.choices, default=Mode.IN_PERSON)
    practitioners = models.ManyToManyField(
        Practitioner, related_name="appointment_types", blank=True, help_text="Who offers it."
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(duration_minutes__gt=0) & Q(duration_minutes__lte=24 * 60),
                name="appointment_type_duration_positive",
            ),
            models.CheckConstraint(
                condition=Q(horizon_days__gt=0), name="appointment_type_horizon_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.duration_minutes} min)"


class WorkingHours(models.Model):
    """A weekly block of wall-clock time in the practitioner's zone (expanded with zoneinfo,
    so 09:00 stays 09:00 across DST changes). Several blocks a day are allowed."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"
        SATURDAY = 5, "Saturday"
        SUNDAY = 6, "Sunday"

    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.CASCADE, related_name="working_hours"
    )
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start_time = models.TimeField()
    end_time = models.TimeField()
    location = models.ForeignKey(
        Location,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty for telehealth-only hours.",
    )
    effective_from = models.DateField(null=True, blank=True)
    effective_to = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["practitioner_id", "weekday", "start_time"]
        verbose_name_plural = "working hours"
        constraints = [
            models.CheckConstraint(
                condition=Q(end_time__gt=F("start_time")), name="working_hours_end_after_start"
            ),
            models.CheckConstraint(
                condition=Q(weekday__gte=0) & Q(weekday__lte=6), name="working_hours_weekday"
            ),
            models.CheckConstraint(
                condition=Q(effective_to__isnull=True)
                | Q(effective_from__isnull=True)
                | Q(effective_to__gte=F("effective_from")),
                name="working_hours_effective_ordered",
            ),
            models.CheckConstraint(
                condition=stored_range("effective_from", "effective_to", null=True),
                name="working_hours_effective_stored_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start_time:%H:%M}–{self.end_time:%H:%M}"


class TimeOff(models.Model):
    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.CASCADE, related_name="time_off"
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["start"]
        verbose_name_plural = "time off"
        constraints = [
            models.CheckConstraint(
                condition=Q(end__gt=F("start")), name="time_off_end_after_start"
            ),
            models.CheckConstraint(
                condition=stored_range("start", "end", moments=True),
                name="time_off_stored_range",
            ),
        ]

    def __str__(self) -> str:
        zone = self.practitioner.timezone or None
        return f"{self.practitioner} off {formats.datetime_format(self.start, zone=zone)}"


class Closure(models.Model):
    """Days the clinic (`location` empty) or one location is closed: a holiday, a closure.
    From `start_date` to `end_date`, both included, on the wall calendar of the practitioner
    whose hours would fall on them. Availability, the booking rules (so the board, smart
    booking and series) leave those days out (`availability.closed_on`)."""

    name = models.CharField(max_length=120, help_text="What the patients and staff read.")
    start_date = models.DateField()
    end_date = models.DateField()
    location = models.ForeignKey(
        Location,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="closures",
        help_text="Empty: the whole clinic is closed.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["start_date", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__gte=F("start_date")), name="closure_end_on_or_after_start"
            ),
            models.CheckConstraint(
                condition=stored_range("start_date", "end_date"), name="closure_stored_range"
            ),
        ]
        indexes = [models.Index(fields=["end_date", "start_date"], name="closure_dates")]

    def __str__(self) -> str:
        where = self.location.name if self.location_id and self.location else "the clinic"
        if self.start_date == self.end_date:
            return f"{self.name}: {where} closed {self.start_date:%d %b %Y}"
        return f"{self.name}: {where} closed {self.start_date:%d %b} – {self.end_date:%d %b %Y}"


class AppointmentSeries(models.Model):
    """A recurring booking (RFC 5545 rule) whose occurrences are ordinary appointments."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="series")
    practitioner = models.ForeignKey(Practitioner, on_delete=models.PROTECT, related_name="series")
    appointment_type = models.ForeignKey(
        AppointmentType, on_delete=models.PROTECT, related_name="+"
    )
    rrule = models.CharField(max_length=500)
    first_start = models.DateTimeField()
    timezone = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "appointment series"
        constraints = [
            models.CheckConstraint(
                condition=stored_range("first_start", moments=True),
                name="appointment_series_stored_range",
            )
        ]

    def __str__(self) -> str:
        return f"{self.patient} with {self.practitioner}: {self.rrule}"


ACTIVE_STATUSES = ("booked", "checked_in", "completed")


class Appointment(models.Model):
    class Status(models.TextChoices):
        BOOKED = "booked", "Booked"
        CHECKED_IN = "checked_in", "Checked in"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        NO_SHOW = "no_show", "No-show"

    class Source(models.TextChoices):
        STAFF = "staff", "Staff"
        PORTAL = "portal", "Patient portal"
        API = "api", "API"
        SMART = "smart", "Smart booking"

    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.PROTECT, related_name="appointments"
    )
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="appointments")
    appointment_type = models.ForeignKey(
        AppointmentType, on_delete=models.PROTECT, related_name="appointments"
    )
    location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.PROTECT, related_name="appointments"
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    # The visit widened by the type's buffers at booking time: what the constraint compares.
    blocked = DateTimeRangeField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.BOOKED)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.STAFF)
    is_telehealth = models.BooleanField(default=False)
    telehealth_url = models.URLField(blank=True)
    notes = models.TextField(blank=True)
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    overbooked = models.BooleanField(
        default=False, help_text="Deliberately booked over another visit or outside hours."
    )
    overbooked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancellation_reason = models.CharField(max_length=300, blank=True)
    is_late_cancel = models.BooleanField(default=False)
    checked_in_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    reschedule_count = models.PositiveSmallIntegerField(default=0)
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    series = models.ForeignKey(
        AppointmentSeries,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="appointments",
    )
    smart_job_id = models.UUIDField(null=True, blank=True, db_index=True)
    unit_reservation = models.OneToOneField(
        "authorizations.UnitReservation",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="appointment",
    )
    authorization_warning = models.CharField(max_length=300, blank=True)
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    # Not a column: appointment_book sets it on the earlier booking an Idempotency-Key replays.
    replayed: bool = False
    # Not a column: the practitioner and blocked range as last read or saved (None: not known),
    # so that a change makes stale the cached availability of the weeks it left as well as of
    # those it took (scheduling.apps).
    calendar_as_saved: tuple | None = None

    class Meta:
        ordering = ["start", "id"]
        # What may be done to a visit (the API, the schedule board, the admin's bulk actions),
        # granted per role in scheduling/grants.py; each goes through its service.
        permissions = [
            ("book_appointment", "Can book appointments"),
            ("checkin_appointment", "Can check patients in"),
            ("complete_appointment", "Can complete visits"),
            ("noshow_appointment", "Can mark no-shows"),
            ("cancel_appointment", "Can cancel appointments"),
            ("overbook_appointment", "Can book over other visits or outside hours"),
        ]
        constraints = [
            ExclusionConstraint(
                name="appointment_no_overlap",
                expressions=[
                    ("practitioner", RangeOperators.EQUAL),
                    ("blocked", RangeOperators.OVERLAPS),
                ],
                condition=Q(status__in=ACTIVE_STATUSES) & Q(overbooked=False),
            ),
            models.CheckConstraint(
                condition=Q(end__gt=F("start")), name="appointment_end_after_start"
            ),
            models.CheckConstraint(
                condition=stored_range("start", "end", moments=True),
                name="appointment_stored_range",
            ),
            models.CheckConstraint(
                condition=Q(blocked__startswith__lte=F("start"))
                & Q(blocked__endswith__gte=F("end")),
                name="appointment_blocked_covers_visit",
            ),
            models.CheckConstraint(
                condition=Q(overbooked=False) | Q(overbooked_by__isnull=False),
                name="appointment_overbook_has_author",
            ),
            models.CheckConstraint(
                condition=~Q(status="cancelled") | Q(cancelled_at__isnull=False),
                name="appointment_cancel_has_time",
            ),
            models.UniqueConstraint(
                fields=["booked_by", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="appointment_idempotency_key_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["practitioner", "start"], name="appointment_pract_start"),
            models.Index(fields=["patient", "start"], name="appointment_patient_start"),
            models.Index(fields=["status", "start"], name="appointment_status_start"),
        ]

    def __str__(self) -> str:
        # The admin's title and breadcrumbs: the visit's own wall time (its location's zone in
        # person, the current zone by video) in the clinic's locale, never UTC.
        zone = formats.visit_zone(self) if self.location_id or self.is_telehealth else None
        when = formats.datetime_format(self.start, zone=zone)
        return f"{self.patient} with {self.practitioner}, {when}"

    @classmethod
    def from_db(cls, db, field_names, values):
        appointment = super().from_db(db, field_names, values)
        if "blocked" in field_names and "practitioner_id" in field_names:
            appointment.calendar_as_saved = (appointment.practitioner_id, appointment.blocked)
        return appointment

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class AppointmentEvent(models.Model):
    """What happened to an appointment, by whom: booked, rescheduled, checked in, ..."""

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30)
    at = models.DateTimeField(auto_now_add=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind}, {formats.datetime_format(self.at)}"


def _new_feed_token() -> str:
    return secrets.token_urlsafe(24)


class CalendarFeed(models.Model):
    """A practitioner's secret iCalendar subscription URL: /calendar/<token>.ics."""

    practitioner = models.OneToOneField(
        Practitioner, on_delete=models.CASCADE, related_name="calendar_feed"
    )
    token = models.CharField(max_length=64, unique=True, default=_new_feed_token)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Calendar of {self.practitioner}"


class SmartBookingJob(models.Model):
    """A request to find and book the best slot(s), run by a Celery worker.

    The row is committed before the task is queued; the task is idempotent on the job id
    (appointments carry `smart_job_id`), so a redelivered or requeued task never books twice.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Looking for slots"
        COMPLETED = "completed", "Booked"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINAL = ("completed", "failed", "cancelled")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="smart_jobs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    request = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    worker_id = models.CharField(max_length=200, blank=True)
    retry_count = models.PositiveSmallIntegerField(default=0)
    error_message = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    reasons = models.JSONField(default=list, blank=True)
    nearest_options = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="smart_job_status")]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status__in=["completed", "failed", "cancelled"])
                | Q(completed_at__isnull=False),
                name="smart_job_final_has_time",
            ),
            # The window's days as the request stores them, ISO 8601 text (compared as text:
            # one shape, so the order is the calendar's).
            models.CheckConstraint(
                condition=Q(request__earliest_date__isnull=True)
                | Q(request__earliest_date__gte=STORED_FIRST_DAY.isoformat())
                & Q(request__earliest_date__lte=STORED_LAST_DAY.isoformat()),
                name="smart_job_earliest_stored_range",
            ),
            models.CheckConstraint(
                condition=Q(request__latest_date__isnull=True)
                | Q(request__latest_date__gte=STORED_FIRST_DAY.isoformat())
                & Q(request__latest_date__lte=STORED_LAST_DAY.isoformat()),
                name="smart_job_latest_stored_range",
            ),
        ]

    def __str__(self) -> str:
        return f"Smart booking {self.id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL


class NextAvailable(models.Model):
    """Each practitioner's earliest free slot (for their shortest active appointment type),
    kept fresh by a task after every schedule change and every few minutes, so the
    practitioner search shows and filters on it inside its one query."""

    practitioner = models.OneToOneField(
        Practitioner,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="next_available_cache",
    )
    start = models.DateTimeField(null=True, blank=True, db_index=True)
    appointment_type = models.ForeignKey(
        AppointmentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "next available"

    def __str__(self) -> str:
        return f"{self.practitioner_id}: {self.start}"


class NextAvailableAt(models.Model):
    """Each practitioner's earliest free slot at each location where they hold working hours
    (current or to come), for the same appointment type as their `NextAvailable` row, written
    by the same refresh: the practitioner search filtered by a location shows and filters on
    this one (`start` null: no free slot there within the refresh's window)."""

    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.CASCADE, related_name="next_available_at"
    )
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="+")
    start = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "next available at a location"
        constraints = [
            models.UniqueConstraint(
                fields=["practitioner", "location"], name="next_available_at_one_per_location"
            ),
        ]
        indexes = [models.Index(fields=["location", "start"], name="next_available_at_loc_start")]

    def __str__(self) -> str:
        return f"{self.practitioner_id} at {self.location_id}: {self.start}"

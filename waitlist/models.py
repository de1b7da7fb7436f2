"""The waitlist: patients who want an earlier visit, and the offers of freed slots made to them.

A `WaitlistEntry` says what the patient wants (a practitioner or any practitioner of a
specialty, a visit type, a date range, preferred weekdays and times). When a visit is cancelled
or moved away, or a practitioner's hours widen or time off shrinks, the freed slot is offered
to the best-matching waiting entry (services.py): a `WaitlistOffer` row *holds* the slot for
that patient until `expires_at`.

What the database keeps true (migration 0001):

- two held offers never overlap for one practitioner (`waitlist_offer_one_hold_per_slot`, an
  exclusion constraint like the appointments' own), and an entry has at most one held offer;
- a hold never double-books: an offer cannot be held over an active visit, and no visit of
  another patient may be booked or moved onto a held slot before the hold's expiry (the
  trigger `waitlist_hold_guard` on the appointments, raising as the constraint
  `appointment_no_overlap_held` so the booking service answers its 409); the visit's own
  time stamp (`updated_at`, the writer's clock) is compared with the expiry, so a hold blocks
  nobody past it, even before the expiry task has marked it expired.
"""

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import ArrayField, DateTimeRangeField, RangeOperators
from django.db import models
from django.db.models import F, Q

from clinic.inputs import stored_range


class WaitlistEntry(models.Model):
    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting"
        OFFERED = "offered", "Offer out"
        BOOKED = "booked", "Booked"
        CANCELLED = "cancelled", "Cancelled"

    patient = models.ForeignKey(
        "practice.Patient", on_delete=models.PROTECT, related_name="waitlist_entries"
    )
    practitioner = models.ForeignKey(
        "practice.Practitioner",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="waitlist_entries",
        help_text="Empty: any practitioner of the specialty.",
    )
    specialty = models.ForeignKey(
        "practice.Specialty",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="waitlist_entries",
    )
    appointment_type = models.ForeignKey(
        "scheduling.AppointmentType", on_delete=models.PROTECT, related_name="waitlist_entries"
    )
    earliest_date = models.DateField()
    latest_date = models.DateField()
    preferred_weekdays = ArrayField(
        models.PositiveSmallIntegerField(),
        blank=True,
        default=list,
        help_text="0 = Monday ... 6 = Sunday; empty: any day.",
    )
    preferred_start_time = models.TimeField(
        null=True, blank=True, help_text="Earliest start, the practitioner's wall clock."
    )
    preferred_end_time = models.TimeField(
        null=True, blank=True, help_text="Latest end, the practitioner's wall clock."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.WAITING)
    authorization_note = models.CharField(
        max_length=400,
        blank=True,
        help_text="What the patient's authorizations said when the entry was made.",
    )
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    appointment = models.ForeignKey(
        "scheduling.Appointment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The visit an accepted offer booked.",
    )

    class Meta:
        ordering = ("created_at", "id")
        verbose_name_plural = "waitlist entries"
        indexes = (
            models.Index(
                fields=("created_at", "id"),
                name="waitlist_entry_waiting",
                condition=Q(status="waiting"),
            ),
        )
        constraints = (
            models.CheckConstraint(
                condition=Q(practitioner__isnull=False) | Q(specialty__isnull=False),
                name="waitlist_entry_practitioner_or_specialty",
            ),
            models.CheckConstraint(
                condition=Q(latest_date__gte=F("earliest_date")),
                name="waitlist_entry_dates_ordered",
            ),
            models.CheckConstraint(
                condition=stored_range("earliest_date", "latest_date"),
                name="waitlist_entry_stored_range",
            ),
            models.CheckConstraint(
                condition=Q(preferred_start_time__isnull=True)
                | Q(preferred_end_time__isnull=True)
                | Q(preferred_end_time__gt=F("preferred_start_time")),
                name="waitlist_entry_times_ordered",
            ),
            models.CheckConstraint(
                condition=Q(preferred_weekdays__contained_by=[0, 1, 2, 3, 4, 5, 6]),
                name="waitlist_entry_weekdays",
            ),
            models.CheckConstraint(
                condition=~Q(status="booked") | Q(appointment__isnull=False),
                name="waitlist_entry_booked_has_visit",
            ),
        )

    def __str__(self) -> str:
        return f"{self.patient} waiting for {self.appointment_type}"


class WaitlistOffer(models.Model):
    class Status(models.TextChoices):
        HELD = "held", "Held"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        EXPIRED = "expired", "Expired"
        WITHDRAWN = "withdrawn", "Withdrawn"

    entry = models.ForeignKey(WaitlistEntry, on_delete=models.CASCADE, related_name="offers")
    patient = models.ForeignKey("practice.Patient", on_delete=models.PROTECT, related_name="+")
    practitioner = models.ForeignKey(
        "practice.Practitioner", on_delete=models.PROTECT, related_name="waitlist_offers"
    )
    appointment_type = models.ForeignKey(
        "scheduling.AppointmentType", on_delete=models.PROTECT, related_name="+"
    )
    location = models.ForeignKey(
        "practice.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    # The visit widened by the type's buffers, as the appointment's `blocked`.
    blocked = DateTimeRangeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.HELD)
    expires_at = models.DateTimeField()
    freed_by = models.ForeignKey(
        "scheduling.Appointment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The cancelled or moved visit that freed the slot.",
    )
    appointment = models.ForeignKey(
        "scheduling.Appointment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The visit the accepted offer booked.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        permissions = [("accept_waitlistoffer", "Can accept or decline an offer for a patient")]
        indexes = (
            models.Index(
                fields=("expires_at",), name="waitlist_offer_held", condition=Q(status="held")
            ),
            models.Index(fields=("practitioner", "start"), name="waitlist_offer_slot"),
        )
        constraints = (
            ExclusionConstraint(
                name="waitlist_offer_one_hold_per_slot",
                expressions=[
                    ("practitioner", RangeOperators.EQUAL),
                    ("blocked", RangeOperators.OVERLAPS),
                ],
                condition=Q(status="held"),
            ),
            models.UniqueConstraint(
                fields=("entry",), condition=Q(status="held"), name="waitlist_offer_one_per_entry"
            ),
            models.CheckConstraint(
                condition=Q(end__gt=F("start")), name="waitlist_offer_end_after_start"
            ),
            models.CheckConstraint(
                condition=Q(blocked__startswith__lte=F("start"))
                & Q(blocked__endswith__gte=F("end")),
                name="waitlist_offer_blocked_covers_visit",
            ),
            models.CheckConstraint(
                condition=~Q(status="accepted") | Q(appointment__isnull=False),
                name="waitlist_offer_accepted_has_visit",
            ),
            models.CheckConstraint(
                condition=Q(status="held") | Q(decided_at__isnull=False),
                name="waitlist_offer_decided_has_time",
            ),
        )

    def __str__(self) -> str:
        return f"Offer to {self.patient} ({self.status})"

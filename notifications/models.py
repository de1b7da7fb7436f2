"""Notifications: what a clinic sends its patients about their visits, and the log of it.

A `Notification` row is written in the transaction of the booking change it is about (the
receivers of `scheduling.signals.appointment_changed`), then sent after commit by a task that
claims it (pending -> sending, a conditional UPDATE) so two workers never send one row. A
reminder is planned as a row per (appointment, rule, start): the unique constraint
`notification_one_reminder_per_rule_start` keeps it to one however often it is planned.

A message about something that is not a visit yet (a waitlist offer: a held slot) has no
appointment but names what it is about in `about` (`waitlist_offer:<id>`), once per channel
(`notification_once_per_subject`); the app that owns the subject registers how to check and
word it (`notifications.subjects`), since notifications imports no app above it.
"""

import uuid

from django.db import models
from django.db.models import Q


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


class Kind(models.TextChoices):
    CONFIRMATION = "confirmation", "Booking confirmation"
    CHANGE = "change", "Change notice"
    CANCELLATION = "cancellation", "Cancellation notice"
    REMINDER = "reminder", "Reminder"
    WAITLIST_OFFER = "waitlist_offer", "Waitlist offer"


class ReminderRule(models.Model):
    """Remind `offset_minutes` before a visit (of `appointment_type`, or of every type when
    empty), on `channel`. Whole days of the offset are counted on the visit zone's wall clock
    (48 h before a 10:00 visit is 10:00 two days earlier, across a DST change too), the rest
    in elapsed minutes."""

    name = models.CharField(max_length=80)
    appointment_type = models.ForeignKey(
        "scheduling.AppointmentType",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="reminder_rules",
        help_text="Empty: every visit type.",
    )
    offset_minutes = models.PositiveIntegerField(
        help_text="How long before the visit: 2880 = 48 h."
    )
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ("-offset_minutes", "pk")
        constraints = (
            models.CheckConstraint(
                condition=Q(offset_minutes__gt=0) & Q(offset_minutes__lte=60 * 24 * 60),
                name="reminder_rule_offset_range",
            ),
        )

    def __str__(self) -> str:
        return self.name


class ChannelOptOut(models.Model):
    """A patient who wants no messages on `channel` (the row says so, nothing else does)."""

    patient = models.ForeignKey(
        "practice.Patient", on_delete=models.CASCADE, related_name="notification_opt_outs"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=("patient", "channel"), name="opt_out_once_per_channel"),
        )

    def __str__(self) -> str:
        return f"{self.patient} – no {self.channel}"


class MessageTemplate(models.Model):
    """A clinic's own wording of one kind of message on one channel (Django template language;
    the context is `notifications.rendering.CONTEXT_HELP`). Without one, the built-in
    wording is used."""

    kind = models.CharField(max_length=20, choices=Kind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    subject = models.CharField(max_length=200, blank=True, help_text="Email only.")
    body = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("kind", "channel")
        constraints = (
            models.UniqueConstraint(fields=("kind", "channel"), name="message_template_once"),
        )

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_channel_display()})"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError
        from django.template import Template, TemplateSyntaxError

        for field in ("subject", "body"):
            try:
                Template(getattr(self, field))
            except TemplateSyntaxError as error:
                raise ValidationError({field: str(error)}) from error


class Notification(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    appointment = models.ForeignKey(
        "scheduling.Appointment",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
        help_text="Empty for a message about no visit yet (see `about`).",
    )
    patient = models.ForeignKey(
        "practice.Patient", on_delete=models.CASCADE, related_name="notifications"
    )
    about = models.CharField(
        max_length=60,
        blank=True,
        db_default="",
        help_text="What a message about no visit is about: `waitlist_offer:<offer id>`.",
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    rule = models.ForeignKey(
        ReminderRule, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    start = models.DateTimeField(
        help_text="The visit's start this message is about (an offer's: the offered slot's)."
    )
    due_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    claim = models.UUIDField(null=True, blank=True, editable=False)
    claimed_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the sweep last queued this row's send: a later sweep leaves it for the "
        "lease, so overlapping beats queue it once.",
    )
    recipient = models.CharField(max_length=254, blank=True)
    provider_id = models.CharField(max_length=200, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-due_at", "-pk")
        indexes = (
            models.Index(
                fields=("due_at",),
                name="notification_pending_due",
                condition=Q(status__in=("pending", "sending")),
            ),
        )
        constraints = (
            models.UniqueConstraint(
                fields=("appointment", "rule", "start"),
                condition=Q(kind="reminder"),
                name="notification_one_reminder_per_rule_start",
            ),
            models.CheckConstraint(
                condition=Q(kind="reminder", rule__isnull=False)
                | (~Q(kind="reminder") & Q(rule__isnull=True)),
                name="notification_rule_iff_reminder",
            ),
            models.CheckConstraint(
                condition=~Q(status="sending") | Q(claim__isnull=False),
                name="notification_sending_is_claimed",
            ),
            models.CheckConstraint(
                condition=Q(appointment__isnull=False, about="")
                | Q(appointment__isnull=True, kind="waitlist_offer") & ~Q(about=""),
                name="notification_about_a_visit_or_an_offer",
            ),
            models.UniqueConstraint(
                fields=("kind", "about", "channel"),
                condition=~Q(about=""),
                name="notification_once_per_subject",
            ),
        )

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.channel} ({self.status})"


class ActionLink(models.Model):
    """A signed link in a message: confirm, cancel or reschedule one visit at one start time.
    Used once (`used_at`, set by a conditional UPDATE), until `expires_at`."""

    class Action(models.TextChoices):
        CONFIRM = "confirm", "Confirm"
        CANCEL = "cancel", "Cancel"
        RESCHEDULE = "reschedule", "Reschedule"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    appointment = models.ForeignKey(
        "scheduling.Appointment", on_delete=models.CASCADE, related_name="action_links"
    )
    action = models.CharField(max_length=12, choices=Action.choices)
    start = models.DateTimeField(help_text="The visit's start the link was sent for.")
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.action} link for visit {self.appointment_id}"

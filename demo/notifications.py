"""Demo notifications: the default reminder rules (48 h before by email, 2 h before by SMS)
planned for every upcoming visit, and the messages of the visits already past marked sent as
they would have been (the confirmations and notices), so the admin's log (Notifications ›
Notifications) has sent, skipped and pending rows. What is still pending is sent by the worker
and the beat of `make run` (console backends). Deterministic; runs once per clinic."""

from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from notifications.models import Channel, Kind, Notification, ReminderRule
from notifications.planning import reminders_plan
from scheduling.models import Appointment

Status = Notification.Status
DEFAULT_RULES = (
    ("48 hours before, by email", 48 * 60, Channel.EMAIL),
    ("2 hours before, by SMS", 2 * 60, Channel.SMS),
)


@transaction.atomic
def notifications_seed(slug: str) -> dict[str, int]:
    if not ReminderRule.objects.exists():
        for name, minutes, channel in DEFAULT_RULES:
            ReminderRule.objects.create(name=name, offset_minutes=minutes, channel=channel)
        reminders_plan()
        _sent_before_today(slug)
    return _counts()


def _sent_before_today(slug: str) -> None:
    """The notices of visits already past went out when they were booked or changed (two
    days before the visit, as the demo schedule pretends)."""
    now = timezone.now()
    past = Notification.objects.filter(
        appointment__start__lt=now, status=Status.PENDING, kind__in=list(Kind)
    ).exclude(kind=Kind.REMINDER)
    for channel, address in ((Channel.EMAIL, "appointment__patient__email"),
                             (Channel.SMS, "appointment__patient__phone")):  # fmt: skip
        rows = past.filter(channel=channel).exclude(**{address: ""})
        for row in rows.values("pk", "uid", address, "appointment__start"):
            Notification.objects.filter(pk=row["pk"]).update(
                status=Status.SENT,
                attempts=F("attempts") + 1,
                recipient=row[address],
                provider_id=f"<{row['uid']}@{slug}.clinic>",
                sent_at=row["appointment__start"] - timedelta(days=2),
            )


def _counts() -> dict[str, int]:
    rows = Notification.objects
    return {
        "rules": ReminderRule.objects.count(),
        "sent": rows.filter(status=Status.SENT).count(),
        "pending": rows.filter(status=Status.PENDING).count(),
        "reminders": rows.filter(kind=Kind.REMINDER, status=Status.PENDING).count(),
        "upcoming": Appointment.objects.filter(
            status=Appointment.Status.BOOKED, start__gt=timezone.now()
        ).count(),
    }

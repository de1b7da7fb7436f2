"""The demo's notifications: the default reminder rules (48 h and 2 h before) planned for
every upcoming visit, the past visits' notices sent, loaded once."""

from datetime import timedelta

from django.utils import timezone

from demo.notifications import notifications_seed
from demo.practice import practice_seed
from demo.schedule import schedule_seed
from notifications.models import Kind, Notification, ReminderRule
from scheduling.models import Appointment
from tests.fixtures import in_clinic

Status = Notification.Status


def test_the_demo_has_the_default_reminders_and_sent_and_pending_messages(acme):
    with in_clinic(acme):
        practice_seed("acme")
        schedule_seed("acme")
        first = notifications_seed("acme")
        now = timezone.now()
        rules = set(ReminderRule.objects.values_list("offset_minutes", "channel"))
        assert rules == {(2880, "email"), (120, "sms")}
        assert first["sent"] >= 3 and first["reminders"] >= 3
        sent = Notification.objects.filter(status=Status.SENT)
        assert not sent.filter(recipient="").exists()
        assert not sent.filter(sent_at__gt=now).exists()
        # Every visit to come whose reminder is not yet due has it planned, once per rule.
        reminders = Notification.objects.filter(kind=Kind.REMINDER)
        assert not reminders.filter(due_at__lte=now, status=Status.PENDING).exists()
        later = Appointment.objects.filter(status="booked", start__gt=now + timedelta(days=3))
        assert later.exists()
        for visit in later:
            assert reminders.filter(appointment=visit, start=visit.start).count() == 2
        assert notifications_seed("acme") == first  # loaded once

"""Builders for the notification tests (run inside a clinic schema)."""

from datetime import date, time

from notifications.models import Channel, ReminderRule
from scheduling.tests import factories as f


def rule(minutes: int, *, channel: str = Channel.EMAIL, appointment_type=None) -> ReminderRule:
    return ReminderRule.objects.create(
        name=f"{minutes} min before by {channel}",
        offset_minutes=minutes,
        channel=channel,
        appointment_type=appointment_type,
    )


def visit_world(
    tz: str = "America/New_York", *, email: str = "robin@example.test", phone: str = ""
):
    """A practitioner working every day 09:00-17:00 at a location in `tz`, a 60-minute type
    (no notice), a patient with an email address (and a phone if given)."""
    place = f.location("Main St", tz=tz)
    practitioner = f.practitioner(tz=tz, at=place, hours=((time(9), time(17)),))
    kind = f.appointment_type(practitioner, minutes=60, notice=0, horizon=800)
    patient = f.patient(first="Robin")
    patient.email, patient.phone = email, phone
    patient.save(update_fields=["email", "phone"])
    return place, practitioner, kind, patient


def book(practitioner, kind, patient, day: date, hour: int, tz: str):
    from scheduling.services import appointment_book

    return appointment_book(
        patient=patient, practitioner=practitioner, appointment_type=kind,
        start=f.local(day, hour, tz=tz),
    )  # fmt: skip

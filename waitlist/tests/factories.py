"""A small world for the waitlist: a practitioner, a visit type, a booked visit to cancel and
patients waiting for one."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from practice.models import Patient, Practitioner
from scheduling.models import Appointment, AppointmentType
from scheduling.services import appointment_book
from scheduling.tests import factories as f

from ..models import WaitlistEntry
from ..services import entry_create


@dataclass
class Waiting:
    practitioner: Practitioner
    kind: AppointmentType
    day: date
    visit: Appointment  # booked, to be cancelled: it frees [10:00, 11:00) on `day`
    holder: Patient  # the visit's patient

    @property
    def start(self) -> datetime:
        return f.local(self.day, 10)

    def entry(self, patient: Patient | None = None, **wishes) -> WaitlistEntry:
        return entry_create(
            patient=patient or f.patient(first="Wanda"),
            appointment_type=wishes.pop("appointment_type", self.kind),
            practitioner=wishes.pop("practitioner", self.practitioner),
            earliest_date=wishes.pop("earliest_date", self.day - timedelta(days=7)),
            latest_date=wishes.pop("latest_date", self.day + timedelta(days=7)),
            **wishes,
        )


def waiting_world() -> Waiting:
    practitioner = f.practitioner(name="Dr. Wait")
    kind = f.appointment_type(practitioner, minutes=60)
    day = f.next_weekday(2)
    holder = f.patient(first="Holly")
    visit = appointment_book(
        patient=holder, practitioner=practitioner, appointment_type=kind, start=f.local(day, 10)
    )
    return Waiting(practitioner, kind, day, visit, holder)


def offers_by_hand(monkeypatch) -> None:
    """For committed tests that make the offers themselves (`slot_offer`): the offer tasks a
    cancellation or a release queue after commit are not sent, so a worker another test of
    the run started cannot hold the slot first (the test's own offer then finds it taken)."""
    from types import SimpleNamespace

    monkeypatch.setattr(
        "waitlist.tasks.offer_slot_task", SimpleNamespace(delay=lambda *args, **kwargs: None)
    )

"""Races for one held slot against the real database: threads, each on its own connection,
committing."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import time_machine
from django.db import close_old_connections, connection
from django_tenants.utils import schema_context

from clinic.errors import ApplicationError
from scheduling import services as scheduling
from scheduling.models import Appointment
from scheduling.selectors import appointments_overlapping
from scheduling.tests import factories as f
from tests.fixtures import in_clinic

from .. import services
from ..models import WaitlistOffer
from .factories import offers_by_hand, waiting_world


def _race(clinic, jobs) -> list[str]:
    """Run each job (a function) at once in its own thread; 'ok', or the refusal's code and
    message, or the unexpected error."""
    barrier = threading.Barrier(len(jobs))

    def run(job) -> str:
        try:
            with schema_context(clinic.schema_name):
                barrier.wait(timeout=30)
                job()
                return "ok"
        except ApplicationError as error:
            return f"{error.code}: {error.detail}"
        except Exception as error:  # noqa: BLE001  (any other outcome fails the test)
            return f"error: {type(error).__name__}: {error}"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        outcomes = list(pool.map(run, jobs))
    close_old_connections()
    return outcomes


@pytest.fixture(autouse=True)
def _no_offer_tasks(monkeypatch):
    offers_by_hand(monkeypatch)


def _held(clinic):
    with in_clinic(clinic):
        world = waiting_world()
        entry = world.entry(f.patient(first="Keen"))
        cancelled = scheduling.appointment_cancel(appointment=world.visit, reason="Sick")
        offer = services.slot_offer(slot=services.freed_slot_of(cancelled, "cancelled", {}))
        assert offer is not None and offer.entry_id == entry.pk
        desk_patient = f.patient(first="Desk")
    return world, offer, desk_patient


def test_fifty_concurrent_accepts_of_one_held_slot_book_exactly_one(committed_acme):
    world, offer, _ = _held(committed_acme)
    outcomes = _race(
        committed_acme, [lambda: services.offer_accept(offer=offer) for _ in range(50)]
    )
    assert outcomes.count("ok") == 1, outcomes
    refused = [o for o in outcomes if o != "ok"]
    assert len(refused) == 49
    assert all(o.startswith("offer-closed: This offer was accepted") for o in refused), refused
    with in_clinic(committed_acme):
        booked = Appointment.objects.filter(practitioner=world.practitioner, status="booked")
        assert booked.count() == 1
        assert booked.get().patient_id == offer.patient_id
        assert WaitlistOffer.objects.get(pk=offer.pk).status == "accepted"
        assert appointments_overlapping() == []


def _desk_books(world, patient):
    return lambda: scheduling.appointment_book(
        patient=patient,
        practitioner=world.practitioner,
        appointment_type=world.kind,
        start=world.start,
    )


def test_the_holders_accept_racing_a_desk_booking_ends_with_one_booking(committed_acme):
    world, offer, desk_patient = _held(committed_acme)
    outcomes = _race(
        committed_acme,
        [lambda: services.offer_accept(offer=offer), _desk_books(world, desk_patient)],
    )
    assert outcomes[0] == "ok", outcomes
    # Whichever ran first, the desk is told why: the hold, or the holder's new visit.
    assert outcomes[1].startswith("slot-unavailable: "), outcomes
    assert "held for a patient on the waitlist" in outcomes[1] or "already booked" in outcomes[1], (
        outcomes
    )
    with in_clinic(committed_acme):
        booked = Appointment.objects.filter(practitioner=world.practitioner, status="booked")
        assert [a.patient_id for a in booked] == [offer.patient_id]


def test_past_the_hold_the_desk_wins_the_race_and_the_holder_is_told(committed_acme):
    world, offer, desk_patient = _held(committed_acme)
    with time_machine.travel(offer.expires_at + timedelta(seconds=5)):
        outcomes = _race(
            committed_acme,
            [lambda: services.offer_accept(offer=offer), _desk_books(world, desk_patient)],
        )
    assert outcomes[1] == "ok", outcomes
    assert outcomes[0] == (
        "offer-closed: This offer has expired; the time was offered to someone else."
    ), outcomes
    with in_clinic(committed_acme):
        booked = Appointment.objects.filter(practitioner=world.practitioner, status="booked")
        assert [a.patient_id for a in booked] == [desk_patient.pk]
        assert appointments_overlapping() == []

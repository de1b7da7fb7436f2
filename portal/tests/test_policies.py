"""Honest policies before booking (issue 18): the late-change rule and any fee on the slot
picker and the confirmation page, and the clinic's and the location's numbers wherever a page
says "call the clinic"; a location that takes bookings must have a phone."""

from decimal import Decimal

import pytest
import time_machine
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import connection

from practice import services as practice_services
from practice.models import ClinicSettings, Location
from scheduling import services
from scheduling.tests import factories as f
from tests.fixtures import in_clinic

from .test_booking import book_url, text

# A Tuesday, 09:00 in New York: the practitioners work 09-12 and 13-17 every day.
MORNING = "2026-12-08T09:00:00-05:00"


def _contact(world, *, clinic_phone="+1 212 555 0100", location_phone="") -> None:
    with in_clinic(world.clinic):
        ClinicSettings.objects.update_or_create(
            id=1,
            defaults={
                "phone": clinic_phone,
                "email": "frontdesk@acme.example",
                "late_cancel_hours": 24,
            },
        )
        Location.objects.filter(pk=world.location.pk).update(phone=location_phone)


def test_confirmation_inside_the_late_window_says_it_cannot_be_changed_online_with_the_number(
    world, patient_client
):
    """The defect: "You can cancel or move the visit online until shortly before it starts",
    then, once booked, "can no longer be changed online — Please call the clinic" with no
    number. The confirmation now says so before the patient commits, and gives the number."""
    _contact(world, location_phone="+1 201 555 0130")
    with time_machine.travel(MORNING, tick=False):
        start = f.local(f.next_weekday(1, weeks_ahead=0), 11)  # two hours away
        page = text(patient_client.get(book_url(world, start)))
    assert "shortly before it starts" not in page
    assert "once booked, it cannot be cancelled or moved online" in page
    assert 'href="tel:+12015550130"' in page and 'href="tel:+12125550100"' in page
    assert "mailto:frontdesk@acme.example" in page


def test_confirmation_ahead_of_the_window_gives_the_deadline_and_what_comes_after(
    world, patient_client
):
    _contact(world)
    with time_machine.travel(MORNING, tick=False):
        start = f.local(f.next_weekday(1, weeks_ahead=1), 11)
        page = text(patient_client.get(book_url(world, start)))
    assert "You can cancel or move this visit online until Dec 14, 2026, 11:00 AM" in page
    assert "(24 hours before it starts)" in page
    assert 'href="tel:+12125550100"' in page
    assert "There is no fee for a late change or a missed visit." in page


def test_slot_picker_states_the_rule_and_the_fee(world, patient_client):
    _contact(world)
    with in_clinic(world.clinic):
        ClinicSettings.objects.filter(id=1).update(late_change_fee=Decimal("40.00"))
    with time_machine.travel(MORNING, tick=False):
        page = text(patient_client.get(f"/practitioners/{world.maya.pk}/?type={world.visit.pk}"))
    assert "can be cancelled or moved online up to 24 hours before they start" in page
    assert "or a missed visit, costs 40.00 USD" in page
    assert 'href="tel:+12125550100"' in page


def test_appointment_inside_the_window_names_the_phone_to_call(world, patient_client):
    _contact(world, clinic_phone="", location_phone="+1 201 555 0130")
    with time_machine.travel(MORNING, tick=False):
        start = f.local(f.next_weekday(1, weeks_ahead=0), 11)
        with in_clinic(world.clinic):
            appointment = services.appointment_book(
                patient=world.patient,
                practitioner=world.maya,
                appointment_type=world.visit,
                start=start,
                location=world.location,
            )
        page = text(patient_client.get(f"/appointments/{appointment.pk}/"))
        listing = text(patient_client.get("/appointments/"))
    for shown in (page, listing):
        assert "can no longer be cancelled or moved online" in shown
        assert 'Please call the clinic: <a href="tel:+12015550130">+1 201 555 0130</a>' in shown


def test_a_location_that_takes_bookings_needs_a_phone(world, acme, make_user, client_for):
    admin = client_for(acme, make_user(acme, "clinic_admin"))
    response = admin.post(
        "/api/v1/locations/",
        {"name": "Annex", "timezone": "America/New_York"},
        "application/json",
    )
    assert response.status_code == 400
    assert "phone" in response.json()["errors"]
    with in_clinic(acme):
        assert not Location.objects.filter(name="Annex").exists()
        quiet = Location.objects.create(name="Closed", timezone="UTC", is_active=False)
        with pytest.raises(ValidationError) as refused:
            practice_services.location_reactivate(location=quiet)
        assert "phone" in refused.value.message_dict
        quiet.refresh_from_db()
        assert quiet.is_active is False


def test_the_migration_gives_phoneless_locations_the_clinics_number(world):
    fill_phones = __import__(
        "practice.migrations.0009_clinic_contact_and_location_phone", fromlist=["fill_phones"]
    ).fill_phones
    with in_clinic(world.clinic):
        ClinicSettings.objects.filter(id=1).delete()
        Location.objects.filter(pk=world.location.pk).update(phone="+1 212 555 0140")
        empty = Location.objects.create(name="Jersey City", timezone="America/New_York")
        fill_phones(apps, connection.schema_editor())
        empty.refresh_from_db()
        assert ClinicSettings.objects.get(id=1).phone == "+1 212 555 0140"
        assert empty.phone == "+1 212 555 0140"


def test_a_clinic_with_no_number_of_its_own_gives_each_locations(world, patient_client):
    """Issue 18: the slot picker of every location (no one location to name) at a clinic with
    no number of its own said "Please call the clinic." with none: it lists the locations'."""
    _contact(world, clinic_phone="", location_phone="+1 201 555 0130")
    with in_clinic(world.clinic):
        Location.objects.create(name="Annex", timezone="America/New_York", phone="+1 212 555 0177")
    with time_machine.travel(MORNING, tick=False):
        page = text(patient_client.get(f"/practitioners/{world.maya.pk}/?type={world.visit.pk}"))
    assert "Please call the clinic." not in page
    assert (
        'Please call the clinic: <a href="tel:+12125550177">+1 212 555 0177</a> (Annex), '
        f'<a href="tel:+12015550130">+1 201 555 0130</a> ({world.location.name})'
    ) in page

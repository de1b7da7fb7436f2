"""Booking from the practitioner page, the confirmation page, My appointments, cancel and
reschedule (with the late-cancel window), and who may open which appointment."""

from datetime import timedelta
from urllib.parse import urlencode

import pytest
import time_machine
from icalendar import Calendar

from authorizations.tests import factories as af
from scheduling import services
from scheduling.models import Appointment
from scheduling.tests import factories as f
from tests.fixtures import ClinicClient, in_clinic

from .conftest import signed_in


def text(response) -> str:
    return response.content.decode()


def book_url(world, start, practitioner=None, location=True) -> str:
    query = {
        "practitioner": (practitioner or world.maya).pk,
        "type": world.visit.pk,
        "start": start.isoformat(),
    }
    if location:
        query["location"] = world.location.pk
    return f"/book/?{urlencode(query)}"


def form_of(world, start, **extra) -> dict:
    return {
        "practitioner": world.maya.pk,
        "type": world.visit.pk,
        "start": start.isoformat(),
        "location": world.location.pk,
        "idempotency_key": "portal-test-key",
        **extra,
    }


def book(world, start, practitioner=None, patient=None) -> Appointment:
    with in_clinic(world.clinic):
        return services.appointment_book(
            patient=patient or world.patient,
            practitioner=practitioner or world.maya,
            appointment_type=world.visit,
            start=start,
        )


def test_confirmation_step_asks_anonymous_visitors_to_sign_in_then_returns(world):
    start = f.local(f.next_weekday(1), 10)
    url = book_url(world, start)
    response = ClinicClient(world.clinic).get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/signin/?next=/book/")


def test_confirmation_step_summarises_the_visit_and_offers_in_person_or_video(
    world, patient_client
):
    start = f.local(f.next_weekday(1), 10)
    page = text(patient_client.get(book_url(world, start)))
    assert "Confirm your booking" in page
    assert "Dr. Maya Lopez" in page and "Speech session" in page
    assert 'value="in_person" checked' in page and 'value="telehealth"' in page
    assert 'name="idempotency_key" value="portal-' in page


def test_booking_books_for_the_signed_in_patient_and_shows_the_confirmation(world, patient_client):
    start = f.local(f.next_weekday(1), 10)
    response = patient_client.post("/book/", form_of(world, start, mode="in_person"))
    assert response.status_code == 302
    with in_clinic(world.clinic):
        appointment = Appointment.objects.get()
        assert appointment.patient == world.patient and appointment.start == start
        assert appointment.source == "portal" and appointment.booked_by == world.user
        assert appointment.location == world.location and not appointment.is_telehealth
    assert response["Location"] == f"/appointments/{appointment.pk}/?booked=1"
    page = text(patient_client.get(response["Location"]))
    assert "You&#x27;re booked!" in page or "You're booked!" in page
    assert f"/appointments/{appointment.pk}/calendar.ics" in page
    assert world.location.name in page


def test_a_video_visit_gets_its_meeting_link_on_the_confirmation(world, patient_client):
    start = f.local(f.next_weekday(1), 11)
    response = patient_client.post("/book/", form_of(world, start, mode="telehealth"))
    with in_clinic(world.clinic):
        appointment = Appointment.objects.get()
    assert appointment.is_telehealth and appointment.telehealth_url
    page = text(patient_client.get(response["Location"]))
    assert appointment.telehealth_url in page and "Join the video visit" in page


def test_a_double_submit_books_once(world, patient_client):
    start = f.local(f.next_weekday(1), 10)
    first = patient_client.post("/book/", form_of(world, start))
    second = patient_client.post("/book/", form_of(world, start))
    assert first["Location"] == second["Location"]
    with in_clinic(world.clinic):
        assert Appointment.objects.count() == 1


def test_a_slot_taken_meanwhile_answers_409_with_alternatives_in_place(
    world, patient_client, make_user
):
    start = f.local(f.next_weekday(1), 10)
    with in_clinic(world.clinic):
        rival = f.patient(first="Rival")
    book(world, start, patient=rival)
    response = patient_client.post("/book/", form_of(world, start))
    assert response.status_code == 409
    page = text(response)
    assert "That time was just taken" in page
    assert "Rival" not in page  # never another patient's details
    options = page.split('class="option-list"', 1)[1].split("</ul>", 1)[0]
    assert options.count('class="option"') >= 3
    assert "/book/?" in options and f"type={world.visit.pk}" in options
    assert "Confirm booking" not in page  # the taken slot cannot be confirmed again
    with in_clinic(world.clinic):
        assert Appointment.objects.filter(patient=world.patient).count() == 0


def test_a_refused_booking_says_why(world, patient_client):
    too_soon = f.local(f.next_weekday(1), 10) - timedelta(days=30)  # in the past
    response = patient_client.post("/book/", form_of(world, too_soon))
    assert response.status_code == 422
    assert "in the past" in text(response)


def test_a_booking_beyond_the_authorization_is_refused_with_the_units_left(world, patient_client):
    code = None
    with in_clinic(world.clinic):
        code = f.service_code("92507", None)
        code.requires_authorization = True
        code.save()
        world.visit.service_code = code
        world.visit.save()
        af.authorization(world.patient, code, units=1)
    book(world, f.local(f.next_weekday(1), 9))  # uses the only unit
    response = patient_client.post("/book/", form_of(world, f.local(f.next_weekday(1), 14)))
    assert response.status_code == 409
    assert "unit" in text(response).lower()


def test_a_bad_link_is_a_400_page(patient_client):
    response = patient_client.get("/book/?practitioner=1&type=x&start=yesterday")
    assert response.status_code == 400
    assert "incomplete or out of date" in text(response)


def test_my_appointments_lists_upcoming_and_past_with_calendar_links_and_units(
    world, patient_client
):
    with in_clinic(world.clinic):
        code = f.service_code("92507", None)
        world.visit.service_code = code
        world.visit.save()
        auth, line = af.authorization(world.patient, code, units=20)
    soon = book(world, f.local(f.next_weekday(1), 10))
    later = book(world, f.local(f.next_weekday(2, weeks_ahead=2), 10))
    gone = book(world, f.local(f.next_weekday(3), 10))
    with in_clinic(world.clinic):
        services.appointment_cancel(appointment=gone)
    page = text(patient_client.get("/appointments/"))
    upcoming, past = page.split('id="upcoming-title"', 1)[1].split('id="past-title"', 1)
    assert f'data-appointment="{soon.pk}"' in upcoming
    assert f'data-appointment="{later.pk}"' in upcoming
    assert upcoming.index(f'data-appointment="{soon.pk}"') < upcoming.index(
        f'data-appointment="{later.pk}"'
    )
    assert f'data-appointment="{gone.pk}"' in past and "Cancelled" in past
    assert f"/appointments/{soon.pk}/calendar.ics" in upcoming
    assert f"/appointments/{soon.pk}/cancel/" in upcoming
    assert f"/appointments/{soon.pk}/reschedule/" in upcoming
    # 20 units, two visits booked (per-visit code: one unit each) -> 18 left.
    assert "<strong>18</strong>" in page and auth.number in page


def test_calendar_file_of_an_appointment(world, patient_client):
    appointment = book(world, f.local(f.next_weekday(1), 10))
    response = patient_client.get(f"/appointments/{appointment.pk}/calendar.ics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    assert "attachment" in response["Content-Disposition"]
    event = Calendar.from_ical(response.content).walk("VEVENT")[0]
    assert event.decoded("dtstart") == appointment.start
    assert "Dr. Maya Lopez" in str(event["summary"])


def test_another_patients_appointment_is_403_on_every_page(world, acme, make_user):
    theirs = book(world, f.local(f.next_weekday(1), 10))
    intruder = make_user(acme, "patient")
    with in_clinic(acme):
        f.patient(user=intruder, first="Ivy")
    client = signed_in(acme, intruder)
    for url in (
        f"/appointments/{theirs.pk}/",
        f"/appointments/{theirs.pk}/calendar.ics",
        f"/appointments/{theirs.pk}/cancel/",
        f"/appointments/{theirs.pk}/reschedule/",
        f"/appointments/{theirs.pk}/reschedule/confirm/?start=2030-01-01T10:00:00%2B00:00",
    ):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "belongs to another patient" in text(response)
    assert client.post(f"/appointments/{theirs.pk}/cancel/").status_code == 403
    with in_clinic(acme):
        assert Appointment.objects.get(pk=theirs.pk).status == "booked"
    assert client.get("/appointments/999999/").status_code == 404


def test_cancel_before_the_window_cancels_and_releases(world, patient_client):
    appointment = book(world, f.local(f.next_weekday(1), 10))
    confirm = text(patient_client.get(f"/appointments/{appointment.pk}/cancel/"))
    assert "Yes, cancel it" in confirm and 'for="id_reason"' in confirm
    response = patient_client.post(
        f"/appointments/{appointment.pk}/cancel/", {"reason": "Feeling better"}
    )
    assert response.status_code == 302 and response["Location"] == "/appointments/"
    with in_clinic(world.clinic):
        appointment.refresh_from_db()
        assert appointment.status == "cancelled" and not appointment.is_late_cancel
        assert appointment.cancellation_reason == "Feeling better"
        assert appointment.cancelled_by == world.user
    assert "Your appointment is cancelled." in text(patient_client.get("/appointments/"))


def test_late_cancel_is_refused_online_with_a_clear_message(world, patient_client):
    appointment = book(world, f.local(f.next_weekday(1), 10))
    with time_machine.travel(appointment.start - timedelta(hours=3), tick=True):
        listing = text(patient_client.get("/appointments/"))
        assert "can no longer be cancelled or moved online" in listing
        assert f"/appointments/{appointment.pk}/cancel/" not in listing
        page = text(patient_client.get(f"/appointments/{appointment.pk}/cancel/"))
        assert "Too late to cancel online." in page and "Yes, cancel it" not in page
        response = patient_client.post(f"/appointments/{appointment.pk}/cancel/")
        assert response.status_code == 409
        assert "Too late to cancel online." in text(response)
        assert "up to 24 hours ahead" in text(response) and "call the clinic" in text(response)
        moved = patient_client.post(
            f"/appointments/{appointment.pk}/reschedule/confirm/",
            {"start": (appointment.start + timedelta(days=1)).isoformat()},
        )
        assert moved.status_code == 409 and "up to 24 hours ahead" in text(moved)
    with in_clinic(world.clinic):
        appointment.refresh_from_db()
        assert appointment.status == "booked" and appointment.start == f.local(
            f.next_weekday(1), 10
        )


def test_reschedule_offers_the_same_practitioners_week_and_moves_the_visit(world, patient_client):
    day = f.next_weekday(1)
    appointment = book(world, f.local(day, 10))
    page = text(
        patient_client.get(
            f"/appointments/{appointment.pk}/reschedule/",
            {"from": day.isoformat(), "tz": "America/New_York"},
        )
    )
    first_day = page.split('<li class="day', 2)[1]
    assert ">10:00 AM<" in first_day  # its own slot is free for the move
    new_start = f.local(day + timedelta(days=1), 14)
    confirm = patient_client.get(
        f"/appointments/{appointment.pk}/reschedule/confirm/", {"start": new_start.isoformat()}
    )
    assert "Move your appointment?" in text(confirm)
    response = patient_client.post(
        f"/appointments/{appointment.pk}/reschedule/confirm/", {"start": new_start.isoformat()}
    )
    assert (
        response.status_code == 302 and response["Location"] == f"/appointments/{appointment.pk}/"
    )
    with in_clinic(world.clinic):
        appointment.refresh_from_db()
        assert appointment.start == new_start and appointment.reschedule_count == 1


def test_reschedule_to_a_taken_time_leaves_the_visit_and_offers_own_alternatives(
    world, patient_client
):
    day = f.next_weekday(1)
    appointment = book(world, f.local(day, 10))
    with in_clinic(world.clinic):
        rival = f.patient(first="Rival")
    taken = book(world, f.local(day, 14), patient=rival)
    response = patient_client.post(
        f"/appointments/{appointment.pk}/reschedule/confirm/", {"start": taken.start.isoformat()}
    )
    assert response.status_code == 409
    page = text(response)
    assert "That time was just taken" in page and "was not changed" in page
    options = page.split('class="option-list"', 1)[1].split("</ul>", 1)[0]
    assert f"/appointments/{appointment.pk}/reschedule/confirm/" in options
    assert "Sam Rivera" not in options  # a reschedule keeps the practitioner
    with in_clinic(world.clinic):
        appointment.refresh_from_db()
        assert appointment.start == f.local(day, 10)


def test_appointments_of_one_clinic_do_not_exist_on_another(world, globex, make_user):
    appointment = book(world, f.local(f.next_weekday(1), 10))
    other = make_user(globex, "patient")
    with in_clinic(globex):
        f.patient(user=other)
    response = signed_in(globex, other).get(f"/appointments/{appointment.pk}/")
    assert response.status_code == 404


def test_a_link_without_a_place_offers_where_the_practitioner_works_then(world, patient_client):
    """Smart booking's nearest options carry no location: the visit can still be in person."""
    start = f.local(f.next_weekday(1), 10)
    page = text(patient_client.get(book_url(world, start, location=False)))
    assert 'value="in_person" checked' in page and world.location.name in page
    response = patient_client.post("/book/", form_of(world, start, location="", mode="in_person"))
    assert response.status_code == 302
    with in_clinic(world.clinic):
        appointment = Appointment.objects.get()
    assert appointment.location == world.location and not appointment.is_telehealth


@pytest.mark.parametrize(
    "start", ["0001-01-01T00:00:00", "0001-01-01", "9999-12-31T23:00:00", "9999-12-31T23:59:59Z"]
)
def test_a_link_at_the_ends_of_the_calendar_is_a_400_page(world, patient_client, start):
    query = {"practitioner": world.maya.pk, "type": world.visit.pk, "start": start}
    response = patient_client.get(f"/book/?{urlencode(query)}")
    assert response.status_code == 400
    assert "incomplete or out of date" in text(response)
    response = patient_client.post("/book/", {**query, "location": world.location.pk})
    assert response.status_code == 400
    with in_clinic(world.clinic):
        assert not Appointment.objects.exists()


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "9999-99-99"])
def test_a_week_at_the_ends_of_the_calendar_shows_this_week(world, day):
    client = ClinicClient(world.clinic)
    response = client.get(f"/practitioners/{world.maya.pk}/", {"from": day})
    assert response.status_code == 200
    assert response.content == client.get(f"/practitioners/{world.maya.pk}/").content


@pytest.mark.parametrize("start", ["0001-01-01T00:00:00", "9999-12-31T23:59:59Z"])
def test_a_reschedule_to_the_ends_of_the_calendar_is_a_400_page(world, patient_client, start):
    appointment = book(world, f.local(f.next_weekday(1), 10))
    url = f"/appointments/{appointment.pk}/reschedule/confirm/"
    assert patient_client.get(url, {"start": start}).status_code == 400
    assert patient_client.post(url, {"start": start}).status_code == 400
    with in_clinic(world.clinic):
        appointment.refresh_from_db()
        assert appointment.start == f.local(f.next_weekday(1), 10)
    week = patient_client.get(f"/appointments/{appointment.pk}/reschedule/", {"from": start[:10]})
    assert week.status_code == 200

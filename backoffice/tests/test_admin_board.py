"""The schedule board (/admin/scheduling/board/): what each role sees and may do, and that
every action goes through the services (exclusion constraint, unit ledger, 409 alternatives
identical to the API's)."""

import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from authorizations.models import UnitReservation
from authorizations.selectors import ledger_mismatches
from scheduling import selectors
from scheduling.models import Appointment, TimeOff
from scheduling.tests import factories as f
from scheduling.tests.factories import after, build_world
from tests.fixtures import ClinicClient, in_clinic, session_client

BOARD = "/admin/scheduling/board/"
BOOK = BOARD + "book/"


def action_url(appointment, action: str) -> str:
    return f"{BOARD}appointments/{appointment.pk}/{action}/"


def board_data(response) -> dict:
    match = re.search(
        rb'<script id="sb-data" type="application/json">(.*?)</script>', response.content
    )
    assert match, response.content[:500]
    return json.loads(match.group(1))


def book_form(world, *, start, practitioner=None, patient=None, **extra) -> dict:
    return {
        "patient": (patient or world.patient).pk,
        "practitioner": (practitioner or world.alpha).pk,
        "appointment_type": world.visit.pk,
        "start": start.isoformat(),
        **extra,
    }


# --- The page ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["front_desk", "clinic_admin", "biller", "integrator"])
def test_staff_see_every_practitioner_in_columns_with_status_and_hours(role, admin_as, world):
    page = admin_as(role).get(BOARD, {"date": world.day.isoformat()})
    assert page.status_code == 200
    body = page.content.decode()
    for name in ("Dr. Alpha", "Dr. Beta", "Dr. Gamma"):
        assert name in body
    assert body.count('class="sb-col"') == 3
    assert 'class="sb-working"' in body  # working hours shaded
    assert "sb-status-booked" in body and str(world.patient) in body
    assert "America/New_York" in body  # the clinic's zone, named
    assert "10:00 AM–11:00 AM" in body  # the clinic's wall clock, in its locale (en-US)
    data = board_data(page)
    assert set(map(int, data["appointments"])) == {world.alpha_visit.pk, world.beta_visit.pk}


def test_free_slots_are_offered_only_to_those_who_book(admin_as, world):
    desk = admin_as("front_desk").get(BOARD, {"date": world.day.isoformat()})
    assert b'class="sb-free"' in desk.content
    assert board_data(desk)["can"]["book"] is True
    # 10:00-11:00 is Alpha's: no free slot starts inside it
    alpha_free = re.findall(
        rf'data-practitioner="{world.alpha.pk}" data-start="([^"]+)"', desk.content.decode()
    )
    assert alpha_free and world.at(10).isoformat() not in alpha_free
    assert world.at(9).isoformat() in alpha_free and world.at(11).isoformat() in alpha_free
    biller = admin_as("biller").get(BOARD, {"date": world.day.isoformat()})
    assert b'class="sb-free"' not in biller.content
    assert board_data(biller)["can"] == {
        "book": False, "overbook": False, "check_in": False, "complete": False,
        "no_show": False, "cancel": False,
    }  # fmt: skip


def test_a_practitioner_sees_only_their_own_column(admin_as, world):
    page = admin_as("practitioner").get(BOARD, {"date": world.day.isoformat()})
    assert page.status_code == 200
    body = page.content.decode()
    assert body.count('class="sb-col"') == 1 and "Dr. Alpha" in body
    assert "Dr. Beta" not in body and str(world.other_patient) not in body
    assert set(map(int, board_data(page)["appointments"])) == {world.alpha_visit.pk}


def test_time_off_is_shaded_and_no_slot_is_offered_in_it(acme, admin_as, world):
    with in_clinic(acme):
        TimeOff.objects.create(
            practitioner=world.beta, start=world.at(14), end=world.at(16), reason="Training"
        )
    body = admin_as("front_desk").get(BOARD, {"date": world.day.isoformat()}).content.decode()
    assert 'class="sb-off"' in body and "Training" in body
    beta_free = re.findall(rf'data-practitioner="{world.beta.pk}" data-start="([^"]+)"', body)
    assert world.at(14, 30).isoformat() not in beta_free
    assert world.at(16).isoformat() in beta_free


def test_filters_by_location_and_specialty(admin_as, world):
    client = admin_as("front_desk")
    day = world.day.isoformat()
    uptown = client.get(BOARD, {"date": day, "location": world.uptown.pk}).content.decode()
    assert "Dr. Gamma" in uptown and "Dr. Alpha" not in uptown
    aba = client.get(BOARD, {"date": day, "specialty": "behavior-analysis"}).content.decode()
    assert "Dr. Alpha" in aba and "Dr. Beta" in aba and "Dr. Gamma" not in aba
    nobody = client.get(
        BOARD, {"date": day, "location": world.uptown.pk, "specialty": "behavior-analysis"}
    )
    assert b"No practitioners match" in nobody.content


def test_week_view_shows_seven_days_and_cancelled_only_on_request(acme, admin_as, world):
    from scheduling import services

    with in_clinic(acme):
        services.appointment_cancel(appointment=world.beta_visit, reason="Sick")
    client = admin_as("front_desk")
    week = client.get(BOARD, {"date": world.day.isoformat(), "view": "week"})
    assert week.status_code == 200
    body = week.content.decode()
    assert body.count('<th scope="col"') == 8  # practitioner + 7 days
    assert f'data-appointment="{world.alpha_visit.pk}"' in body
    assert f'data-appointment="{world.beta_visit.pk}"' not in body
    shown = client.get(BOARD, {"date": world.day.isoformat(), "view": "week", "cancelled": "1"})
    assert f'data-appointment="{world.beta_visit.pk}"' in shown.content.decode()
    assert "sb-status-cancelled" in shown.content.decode()


def test_fragment_renders_only_the_grid(admin_as, world):
    fragment = admin_as("front_desk").get(BOARD, {"date": world.day.isoformat(), "fragment": "1"})
    assert fragment.status_code == 200
    assert b'class="sb-day"' in fragment.content and b"<html" not in fragment.content


def test_board_queries_do_not_grow_with_practitioners(
    acme, admin_as, world, django_assert_max_num_queries
):
    client = admin_as("front_desk")
    params = {"date": world.day.isoformat(), "fragment": "1"}
    client.get(BOARD, params)  # warm the session and permission caches
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(BOARD, params)
    with in_clinic(acme):
        for n in range(6):
            p = f.practitioner(name=f"Dr. Extra {n}", specialties=(world.aba,), at=world.downtown)
            world.visit.practitioners.add(p)
    with CaptureQueriesContext(connection) as many:
        client.get(BOARD, params)
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


def test_denied_and_anonymous(acme, admin_as, world):
    assert admin_as("patient").get(BOARD).status_code == 302  # not staff: the admin's login
    anonymous = ClinicClient(acme).get(BOARD)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]


# --- Booking -----------------------------------------------------------------------------------


def test_front_desk_books_a_free_slot_through_the_service_and_units_are_reserved(
    acme, admin_as, world
):
    response = admin_as("front_desk").post(BOOK, book_form(world, start=world.at(13)))
    assert response.status_code == 201, response.content
    body = response.json()["appointment"]
    with in_clinic(acme):
        booked = Appointment.objects.get(pk=body["id"])
        assert booked.source == "staff" and booked.booked_by.roles == {"front_desk"}
        assert booked.start == world.at(13) and booked.status == "booked"
        assert booked.unit_reservation.units == 4 and booked.unit_reservation.state == "reserved"
        world.line.refresh_from_db()
        assert world.line.units_scheduled == 8  # the fixture's visit + this one
        assert ledger_mismatches() == []


def test_a_taken_slot_answers_the_apis_409_with_the_same_alternatives(
    acme, admin_as, client_for, role_users, world
):
    form = book_form(world, start=world.at(10, 30), patient=world.other_patient)
    board = admin_as("front_desk").post(BOOK, form)
    assert board.status_code == 409
    assert board["Content-Type"] == "application/problem+json"
    problem = board.json()
    assert problem["code"] == "slot-unavailable"
    assert problem["conflicting_appointments"][0]["id"] == world.alpha_visit.pk
    assert len(problem["suggested_alternatives"]) >= 3
    api = client_for(acme, role_users["front_desk"]).post(
        "/api/v1/appointments/",
        {
            "patient": world.other_patient.pk,
            "practitioner": world.alpha.pk,
            "appointment_type": world.visit.pk,
            "start": world.at(10, 30).isoformat(),
        },
        content_type="application/json",
    )
    assert api.status_code == 409
    assert api.json()["conflicting_appointments"] == problem["conflicting_appointments"]
    assert api.json()["suggested_alternatives"] == problem["suggested_alternatives"]
    with in_clinic(acme):
        assert Appointment.objects.count() == 2  # nothing written
        assert selectors.appointments_overlapping() == []


def test_booking_an_alternative_and_overbooking_explicitly(acme, admin_as, world):
    client = admin_as("front_desk")
    refused = client.post(BOOK, book_form(world, start=world.at(10), patient=world.other_patient))
    alternative = refused.json()["suggested_alternatives"][0]
    assert alternative["practitioner"] == world.alpha.pk  # the same practitioner first
    taken = client.post(
        BOOK,
        book_form(
            world,
            start=datetime.fromisoformat(alternative["start"]),
            patient=world.other_patient,
        ),
    )
    assert taken.status_code == 201, taken.content
    overbooked = client.post(
        BOOK, book_form(world, start=world.at(10), patient=world.other_patient, overbook="true")
    )
    assert overbooked.status_code == 201
    with in_clinic(acme):
        row = Appointment.objects.get(pk=overbooked.json()["appointment"]["id"])
        assert row.overbooked and row.overbooked_by.roles == {"front_desk"}


def test_booking_refusals_name_the_rule(admin_as, world):
    client = admin_as("front_desk")
    outside = client.post(BOOK, book_form(world, start=world.at(18)))
    assert outside.status_code == 422
    assert outside.json()["code"] == "outside-working-hours"
    assert "start" in outside.json()["errors"]
    far = client.post(BOOK, book_form(world, start=datetime(9999, 12, 31, 23, tzinfo=UTC)))
    assert far.status_code == 400 and "start" in far.json()["errors"]
    assert client.get(BOARD, {"date": "9999-12-31", "view": "week"}).status_code == 200
    assert client.get(BOARD, {"date": "0001-01-01", "location": "x"}).status_code == 200
    bad = client.post(BOOK, {"patient": "x", "start": "yesterday"})
    assert bad.status_code == 400 and bad.json()["code"] == "validation-error"
    assert {"patient", "practitioner", "appointment_type", "start"} <= set(bad.json()["errors"])


def test_units_exhausted_is_a_409_and_nothing_is_written(acme, admin_as, world):
    with in_clinic(acme):
        world.line.units_authorized = 8  # 4 already reserved: room for one more visit
        world.line.save(update_fields=["units_authorized"])
    client = admin_as("front_desk")
    assert client.post(BOOK, book_form(world, start=world.at(13))).status_code == 201
    refused = client.post(BOOK, book_form(world, start=world.at(15)))
    assert refused.status_code == 409 and refused.json()["code"] == "authorization-exhausted"
    with in_clinic(acme):
        assert not Appointment.objects.filter(start=world.at(15)).exists()
        world.line.refresh_from_db()
        assert world.line.units_scheduled == 8 and ledger_mismatches() == []


@pytest.mark.parametrize("role", ["practitioner", "biller", "patient"])
def test_roles_that_do_not_book_are_refused(role, acme, admin_as, world):
    response = admin_as(role).post(BOOK, book_form(world, start=world.at(13)))
    assert response.status_code == (302 if role == "patient" else 403)
    if role != "patient":
        assert response.json()["code"] == "permission-denied"
    with in_clinic(acme):
        assert not Appointment.objects.filter(start=world.at(13)).exists()


def test_patient_search_for_booking(admin_as, world):
    client = admin_as("front_desk")
    found = client.get(BOARD + "patients/", {"q": "robin"}).json()["results"]
    assert [row["id"] for row in found] == [world.patient.pk]
    assert found[0]["dob"] == "1990-01-01"
    assert client.get(BOARD + "patients/", {"q": ""}).json() == {"results": []}
    assert admin_as("integrator").get(BOARD + "patients/", {"q": "robin"}).status_code == 200


# --- Status actions ----------------------------------------------------------------------------


def test_check_in_then_complete_consumes_the_units(acme, admin_as, world):
    client = admin_as("front_desk")
    with time_machine.travel(world.at(9, 30), tick=False):  # the visit's day, before it starts
        checked = client.post(action_url(world.alpha_visit, "check-in"))
        early = client.post(action_url(world.alpha_visit, "complete"))
    assert checked.status_code == 200 and checked.json()["appointment"]["status"] == "checked_in"
    assert early.status_code == 409 and early.json()["code"] == "invalid-transition"
    with time_machine.travel(after(world.at(10)), tick=False):
        done = client.post(action_url(world.alpha_visit, "complete"))
    assert done.status_code == 200 and done.json()["appointment"]["status"] == "completed"
    with in_clinic(acme):
        reservation = UnitReservation.objects.get(pk=world.alpha_visit.unit_reservation_id)
        assert reservation.state == "consumed"
        world.line.refresh_from_db()
        assert (world.line.units_scheduled, world.line.units_used) == (0, 4)
    again = client.post(action_url(world.alpha_visit, "cancel"), {"reason": "late"})
    assert again.status_code == 409 and again.json()["code"] == "invalid-transition"


def test_cancel_with_a_reason_releases_the_units(acme, admin_as, world):
    response = admin_as("front_desk").post(
        action_url(world.alpha_visit, "cancel"), {"reason": "Family emergency"}
    )
    assert response.status_code == 200
    with in_clinic(acme):
        visit = Appointment.objects.get(pk=world.alpha_visit.pk)
        assert visit.status == "cancelled" and visit.cancellation_reason == "Family emergency"
        assert visit.cancelled_by.roles == {"front_desk"}
        assert visit.unit_reservation.state == "released"


def test_no_show_after_the_start(acme, admin_as, world):
    with time_machine.travel(after(world.at(11)), tick=False):
        response = admin_as("clinic_admin").post(action_url(world.beta_visit, "no-show"))
    assert response.status_code == 200 and response.json()["appointment"]["status"] == "no_show"


def test_a_practitioner_completes_their_own_visit_only(acme, admin_as, world):
    client = admin_as("practitioner")
    with time_machine.travel(after(world.at(11)), tick=False):
        other = client.post(action_url(world.beta_visit, "complete"))
        own = client.post(action_url(world.alpha_visit, "complete"))
    assert other.status_code == 404  # not on their board
    assert own.status_code == 200 and own.json()["appointment"]["status"] == "completed"
    for action in ("check-in", "no-show", "cancel"):
        refused = client.post(action_url(world.alpha_visit, action))
        assert refused.status_code == 403, action
    with in_clinic(acme):
        assert Appointment.objects.get(pk=world.beta_visit.pk).status == "booked"


@pytest.mark.parametrize("action", ["check-in", "complete", "no-show", "cancel"])
def test_a_biller_changes_nothing(action, acme, admin_as, world):
    response = admin_as("biller").post(action_url(world.alpha_visit, action))
    assert response.status_code == 403 and response.json()["code"] == "permission-denied"
    with in_clinic(acme):
        assert Appointment.objects.get(pk=world.alpha_visit.pk).status == "booked"


def test_unknown_action_and_appointment_are_404s(admin_as, world):
    client = admin_as("front_desk")
    assert client.post(action_url(world.alpha_visit, "delete")).status_code == 404
    assert client.post(f"{BOARD}appointments/999999/cancel/").status_code == 404
    assert client.get(action_url(world.alpha_visit, "cancel")).status_code == 405


def test_another_clinics_session_does_not_reach_this_board(acme, globex, make_user, world):
    with in_clinic(globex):
        build_world(None, day=world.day)
    outsider = make_user(globex, "front_desk")
    # globex's session cookie presented on acme's host: no such session in acme's schema
    client = session_client(globex, outsider)
    client.defaults["HTTP_HOST"] = "acme.localhost"
    assert client.get(BOARD).status_code == 302
    assert client.post(action_url(world.alpha_visit, "cancel")).status_code == 302
    # and globex's own board shows only globex's rows
    own = session_client(globex, outsider).get(BOARD, {"date": world.day.isoformat()})
    assert own.status_code == 200
    ids = set(map(int, board_data(own)["appointments"]))
    with in_clinic(globex):
        assert ids == set(Appointment.objects.values_list("pk", flat=True))
    assert str(world.patient) not in own.content.decode()


def test_the_board_shows_the_clinics_day_across_a_dst_change(acme, admin_as):
    with in_clinic(acme):
        world = build_world(None, day=date(2027, 11, 7))
    page = admin_as("front_desk").get(BOARD, {"date": "2027-11-07"})
    body = page.content.decode()
    assert "10:00 AM–11:00 AM" in body and "11:00 AM–12:00 PM" in body
    assert "Sunday, November 7, 2027" in body
    assert world.alpha_visit.start.utcoffset() == timedelta(hours=-5)

"""Staff scheduling on the board (issue 18): moving a visit to another time or practitioner
through the API's reschedule service, and same-day / walk-in bookings that the patients'
minimum notice does not bind (the clinic's staff notice does)."""

import re
from datetime import datetime

import time_machine

from authorizations.selectors import ledger_mismatches
from practice.models import ClinicSettings
from scheduling import selectors
from scheduling.models import Appointment, AppointmentType
from tests.fixtures import in_clinic

from .test_admin_board import BOARD, BOOK, board_data, book_form


def move_url(appointment) -> str:
    return f"{BOARD}appointments/{appointment.pk}/move/"


# --- Moving a visit ----------------------------------------------------------------------------


def test_front_desk_moves_a_visit_to_another_time_and_practitioner(acme, admin_as, world):
    """The defect: the board offered check in / complete / no-show / cancel only, so moving a
    visit meant cancelling and rebooking it."""
    client = admin_as("front_desk")
    page = board_data(client.get(BOARD, {"date": world.day.isoformat()}))
    shown = page["appointments"][str(world.alpha_visit.pk)]
    assert shown["movable"] is True and shown["practitioner_id"] == world.alpha.pk
    later = client.post(move_url(world.alpha_visit), {"start": world.at(15).isoformat()})
    assert later.status_code == 200, later.content
    to_beta = client.post(
        move_url(world.alpha_visit),
        {"start": world.at(14).isoformat(), "practitioner": world.beta.pk},
    )
    assert to_beta.status_code == 200, to_beta.content
    assert to_beta.json()["appointment"]["practitioner"]["id"] == world.beta.pk
    with in_clinic(acme):
        moved = Appointment.objects.get(pk=world.alpha_visit.pk)
        assert (moved.practitioner_id, moved.start) == (world.beta.pk, world.at(14))
        assert moved.status == "booked" and moved.reschedule_count == 2
        assert moved.location_id == world.downtown.pk  # where Beta works then
        assert moved.unit_reservation.units == 4 and moved.unit_reservation.state == "reserved"
        assert ledger_mismatches() == []
        assert selectors.appointments_overlapping() == []
        event = moved.events.filter(kind="rescheduled").latest("id")
        assert event.data["previous"]["practitioner"] == world.alpha.pk


def test_the_move_dialogs_wall_clock_time_is_the_clinics(acme, admin_as, world):
    client = admin_as("front_desk")
    response = client.post(move_url(world.alpha_visit), {"start": f"{world.day.isoformat()}T13:30"})
    assert response.status_code == 200, response.content
    assert datetime.fromisoformat(response.json()["appointment"]["start"]) == world.at(13, 30)


def test_a_move_into_a_taken_slot_is_the_apis_409_and_leaves_the_visit(
    acme, admin_as, client_for, role_users, world
):
    client = admin_as("front_desk")
    board = client.post(
        move_url(world.alpha_visit),
        {"start": world.at(11, 30).isoformat(), "practitioner": world.beta.pk},
    )
    assert board.status_code == 409 and board["Content-Type"] == "application/problem+json"
    problem = board.json()
    assert problem["code"] == "slot-unavailable"
    assert [c["id"] for c in problem["conflicting_appointments"]] == [world.beta_visit.pk]
    assert problem["suggested_alternatives"]
    api = client_for(acme, role_users["front_desk"]).post(
        f"/api/v1/appointments/{world.alpha_visit.pk}/reschedule/",
        {"start": world.at(11, 30).isoformat(), "practitioner": world.beta.pk},
        content_type="application/json",
    )
    assert api.status_code == 409
    assert api.json()["conflicting_appointments"] == problem["conflicting_appointments"]
    assert api.json()["suggested_alternatives"] == problem["suggested_alternatives"]
    with in_clinic(acme):
        kept = Appointment.objects.get(pk=world.alpha_visit.pk)
        assert (kept.practitioner_id, kept.start, kept.reschedule_count) == (
            world.alpha.pk,
            world.at(10),
            0,
        )
        assert ledger_mismatches() == []


def test_a_move_refused_by_a_rule_names_the_field(admin_as, world):
    client = admin_as("front_desk")
    outside = client.post(move_url(world.alpha_visit), {"start": world.at(20).isoformat()})
    assert outside.status_code == 422 and outside.json()["code"] == "outside-working-hours"
    assert "start" in outside.json()["errors"]
    garbage = client.post(move_url(world.alpha_visit), {"start": "tomorrow-ish"})
    assert garbage.status_code == 400 and "start" in garbage.json()["errors"]
    nobody = client.post(
        move_url(world.alpha_visit), {"start": world.at(14).isoformat(), "practitioner": 999999}
    )
    assert nobody.status_code == 400 and "practitioner" in nobody.json()["errors"]


def test_only_those_who_book_move_visits(acme, admin_as, world):
    target = {"start": world.at(15).isoformat()}
    for role in ("practitioner", "biller"):
        assert admin_as(role).post(move_url(world.alpha_visit), target).status_code in (403, 404)
    page = board_data(admin_as("practitioner").get(BOARD, {"date": world.day.isoformat()}))
    assert page["appointments"][str(world.alpha_visit.pk)]["movable"] is False
    with in_clinic(acme):
        assert Appointment.objects.get(pk=world.alpha_visit.pk).start == world.at(10)


# --- Same-day and walk-in bookings ---------------------------------------------------------


def _two_hours_notice(acme, world) -> None:
    with in_clinic(acme):
        AppointmentType.objects.filter(pk=world.visit.pk).update(min_notice_minutes=120)


def test_front_desk_books_same_day_inside_the_patients_notice(
    acme, admin_as, client_for, role_users, world, make_user
):
    """The defect: the board showed 13:45 free and booking it answered "must be booked at
    least 2 hours ahead", the patients' rule applied to staff."""
    _two_hours_notice(acme, world)
    with time_machine.travel(world.at(12, 7), tick=False):
        desk = admin_as("front_desk").post(BOOK, book_form(world, start=world.at(12, 45)))
        assert desk.status_code == 201, desk.content
        with in_clinic(acme):
            patient_user = make_user(acme, "patient")
            world.other_patient.user = patient_user
            world.other_patient.save()
        own = client_for(acme, patient_user).post(
            "/api/v1/appointments/",
            {
                "practitioner": world.alpha.pk,
                "appointment_type": world.visit.pk,
                "start": world.at(14).isoformat(),
            },
            content_type="application/json",
        )
    assert own.status_code == 422 and own.json()["code"] == "inside-minimum-notice"
    assert "2 hours ahead" in own.json()["detail"]


def test_the_clinics_staff_notice_binds_staff(acme, admin_as, world):
    _two_hours_notice(acme, world)
    with in_clinic(acme):
        ClinicSettings.objects.update_or_create(id=1, defaults={"staff_min_notice_minutes": 60})
    with time_machine.travel(world.at(12, 7), tick=False):
        client = admin_as("front_desk")
        inside = client.post(BOOK, book_form(world, start=world.at(12, 45)))
        outside = client.post(BOOK, book_form(world, start=world.at(13, 15)))
        page = client.get(BOARD, {"date": world.day.isoformat()}).content.decode()
    assert inside.status_code == 422 and inside.json()["code"] == "inside-staff-notice"
    assert "start" in inside.json()["errors"] and "60 minutes" in inside.json()["detail"]
    assert outside.status_code == 201, outside.content
    free = re.findall(rf'data-practitioner="{world.beta.pk}" data-start="([^"]+)"', page)
    assert world.at(13).isoformat() not in free and world.at(13, 15).isoformat() in free
    walk_in = re.search(r'class="sb-btn sb-walkin"[^>]*data-start="([^"]+)"', page)
    assert walk_in and walk_in.group(1) == world.at(13, 15).isoformat()


def test_a_walk_in_books_the_next_step_from_now(acme, admin_as, world):
    _two_hours_notice(acme, world)
    with time_machine.travel(world.at(12, 7), tick=False):
        client = admin_as("front_desk")
        page = client.get(BOARD, {"date": world.day.isoformat()}).content.decode()
        walk_in = r'class="sb-btn sb-walkin" data-practitioner="(\d+)" data-start="([^"]+)"'
        starts = re.findall(walk_in, page)
        assert {int(p) for p, _ in starts} == {world.alpha.pk, world.beta.pk, world.gamma.pk}
        start = datetime.fromisoformat(starts[0][1])
        assert start == world.at(12, 15)
        booked = client.post(
            BOOK, book_form(world, start=start, practitioner=world.gamma, patient=world.patient)
        )
    assert booked.status_code == 201, booked.content
    with in_clinic(acme):
        row = Appointment.objects.get(pk=booked.json()["appointment"]["id"])
        assert row.start == world.at(12, 15) and row.location_id == world.uptown.pk
    other_day = admin_as("front_desk").get(BOARD, {"date": world.day.isoformat()})
    assert b"sb-walkin" not in other_day.content  # only on today's board


def test_a_walk_in_booked_after_its_step_began_starts_at_the_next_one(acme, admin_as, world):
    """The defect: the desk opened today's board at 12:07 (Walk-in: 12:15), found the patient
    and pressed Book at 12:16, and the board answered "This time is in the past"."""
    _two_hours_notice(acme, world)
    with time_machine.travel(world.at(12, 7), tick=False):
        client = admin_as("front_desk")
        page = client.get(BOARD, {"date": world.day.isoformat()}).content.decode()
    shown = re.search(r'class="sb-btn sb-walkin"[^>]*data-start="([^"]+)"', page)
    assert shown and datetime.fromisoformat(shown.group(1)) == world.at(12, 15)
    form = book_form(world, start=world.at(12, 15), practitioner=world.gamma, patient=world.patient)
    with time_machine.travel(world.at(12, 16), tick=False):
        slot = client.post(BOOK, form)
        walk_in = client.post(BOOK, {**form, "walk_in": "true"})
        ahead = client.post(
            BOOK,
            {**form, "walk_in": "true", "start": world.at(15).isoformat(),
             "patient": world.other_patient.pk},
        )  # fmt: skip
    assert slot.status_code == 422 and slot.json()["code"] == "start-in-past"
    assert walk_in.status_code == 201, walk_in.content
    assert walk_in.json()["appointment"]["start"] == world.at(12, 30).isoformat()
    # a later start the desk chose stands
    assert (
        ahead.status_code == 201
        and ahead.json()["appointment"]["start"] == world.at(15).isoformat()
    )


# --- Closures on the board -----------------------------------------------------------------


def test_a_closed_day_has_no_hours_or_free_slots_and_says_why(acme, admin_as, world):
    from scheduling.models import Closure

    with in_clinic(acme):
        Closure.objects.create(name="Snow day", start_date=world.day, end_date=world.day,
                               location=world.uptown)  # fmt: skip
    client = admin_as("front_desk")
    body = client.get(BOARD, {"date": world.day.isoformat()}).content.decode()
    assert "closed" in body and "Snow day" in body and world.uptown.name in body
    assert not re.findall(rf'data-practitioner="{world.gamma.pk}" data-start=', body)
    assert re.findall(rf'data-practitioner="{world.beta.pk}" data-start=', body)  # Downtown open
    refused = client.post(BOOK, book_form(world, start=world.at(13), practitioner=world.gamma))
    assert refused.status_code == 422 and refused.json()["code"] == "clinic-closed"
    week = client.get(BOARD, {"date": world.day.isoformat(), "view": "week"}).content.decode()
    assert "Snow day" in week


# --- The admin's Move, and the treatment plan page -----------------------------------------


def test_the_admin_appointment_page_moves_through_the_boards_dialog(acme, admin_as, world):
    client = admin_as("front_desk")
    page = client.get(f"/admin/scheduling/appointment/{world.alpha_visit.pk}/change/")
    link = f"/admin/scheduling/board/?move={world.alpha_visit.pk}"
    assert page.status_code == 200 and link.encode() in page.content
    board = client.get(link)
    assert board.context["filters"].day == world.day  # the visit's day, its Move dialog opens
    assert str(world.alpha_visit.pk) in board_data(board)["appointments"]
    biller = admin_as("biller").get(f"/admin/scheduling/appointment/{world.alpha_visit.pk}/change/")
    assert link.encode() not in biller.content


def test_the_front_desk_books_a_treatment_plan_from_an_authorization_line(acme, admin_as, world):
    client = admin_as("front_desk")
    assert client.get(f"{BOARD}plan/").status_code == 200
    form = {
        "line": world.line.pk,
        "appointment_type": world.visit.pk,
        "practitioner": world.beta.pk,
        "weekdays": [world.day.weekday()],
        "at": "15:00",
        "first_day": world.day.isoformat(),
        "weeks": "3",
    }
    booked = client.post(f"{BOARD}plan/", form)
    assert booked.status_code == 200 and b"Booked 3 visits" in booked.content
    too_many = client.post(f"{BOARD}plan/", {**form, "weeks": "12", "at": "16:00"})
    body = too_many.content.decode()
    assert "Booked" not in body and "units left" in body and "left on this line" in body
    with in_clinic(acme):
        assert (
            Appointment.objects.filter(practitioner=world.beta, series__isnull=False).count() == 3
        )
    assert admin_as("practitioner").get(f"{BOARD}plan/").status_code == 403

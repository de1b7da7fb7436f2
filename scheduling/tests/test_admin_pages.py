"""The schedule's admin pages: appointments (filters, search, date hierarchy, bulk actions
through the services, the reservation on the detail page), smart-booking jobs, hours and time
off, for each role."""

from datetime import timedelta

import pytest
import time_machine

from authorizations.selectors import ledger_mismatches
from scheduling import services
from scheduling.models import Appointment, SmartBookingJob, TimeOff, WorkingHours
from tests.fixtures import in_clinic

from . import factories as f
from .factories import after

APPOINTMENTS = "/admin/scheduling/appointment/"


def listed(response) -> list:
    assert response.status_code == 200, response.status_code
    return list(response.context["cl"].result_list)


def action_names(response) -> set[str]:
    form = response.context["action_form"]
    if form is None:
        return set()
    return {value for value, _ in form.fields["action"].choices if value}


def run_action(client, action: str, appointments, **extra):
    return client.post(
        APPOINTMENTS,
        {"action": action, "_selected_action": [a.pk for a in appointments], **extra},
    )


def messages_of(response) -> list[str]:
    return [str(message) for message in response.wsgi_request._messages]


# --- The list ----------------------------------------------------------------------------------


def test_filters_search_and_date_hierarchy(acme, admin_as, world):
    client = admin_as("front_desk")
    everything = listed(client.get(APPOINTMENTS))
    assert {a.pk for a in everything} == {world.alpha_visit.pk, world.beta_visit.pk}
    by_practitioner = listed(client.get(APPOINTMENTS, {"practitioner__id__exact": world.beta.pk}))
    assert [a.pk for a in by_practitioner] == [world.beta_visit.pk]
    assert listed(client.get(APPOINTMENTS, {"status__exact": "cancelled"})) == []
    assert len(listed(client.get(APPOINTMENTS, {"source__exact": "staff"}))) == 2
    by_type = listed(client.get(APPOINTMENTS, {"appointment_type__id__exact": world.visit.pk}))
    assert len(by_type) == 2
    found = listed(client.get(APPOINTMENTS, {"q": str(world.patient)}))  # "Robin Patient12"
    assert [a.pk for a in found] == [world.alpha_visit.pk]
    day = world.day
    on_day = client.get(
        APPOINTMENTS, {"start__year": day.year, "start__month": day.month, "start__day": day.day}
    )
    assert len(listed(on_day)) == 2
    page = on_day.content.decode()
    assert "10:00 AM–11:00 AM" in page  # the clinic's wall clock (en-US), not UTC
    assert 'class="bo-status bo-status-booked"' in page
    assert "4 reserved" in page  # units of the visit


def test_a_practitioner_lists_only_their_own_visits(admin_as, world):
    client = admin_as("practitioner")
    response = client.get(APPOINTMENTS)
    assert [a.pk for a in listed(response)] == [world.alpha_visit.pk]
    assert action_names(response) == {"complete_selected"}
    other = client.get(f"{APPOINTMENTS}{world.beta_visit.pk}/change/")
    assert other.status_code == 403  # not theirs: refused, not "does not exist"


DESK_ACTIONS = {
    "check_in_selected",
    "complete_selected",
    "no_show_selected",
    "undo_no_show_selected",  # the no-show's permission (billing reverses its fee)
    "cancel_selected",
}


@pytest.mark.parametrize(
    ("role", "actions"),
    [("front_desk", DESK_ACTIONS), ("clinic_admin", DESK_ACTIONS), ("biller", set())],
)
def test_bulk_actions_follow_the_role(role, actions, admin_as, world):
    assert action_names(admin_as(role).get(APPOINTMENTS)) == actions


def test_nobody_adds_or_deletes_appointments_here(admin_as, world):
    client = admin_as("clinic_admin")
    assert client.get(f"{APPOINTMENTS}add/").status_code == 403
    assert client.get(f"{APPOINTMENTS}{world.alpha_visit.pk}/delete/").status_code == 403


# --- Bulk actions ------------------------------------------------------------------------------


def test_bulk_check_in_and_complete_go_through_the_services(acme, admin_as, world):
    client = admin_as("front_desk")
    visits = [world.alpha_visit, world.beta_visit]
    with time_machine.travel(world.at(9), tick=False):  # check-in: on the visits' day
        checked = run_action(client, "check_in_selected", visits)
    assert checked.status_code == 302
    with time_machine.travel(after(world.at(11)), tick=False):
        done = run_action(client, "complete_selected", visits, follow=False)
    assert done.status_code == 302
    with in_clinic(acme):
        assert set(Appointment.objects.values_list("status", flat=True)) == {"completed"}
        world.line.refresh_from_db()
        assert (world.line.units_scheduled, world.line.units_used) == (0, 4)
        assert ledger_mismatches() == []


def test_bulk_refusals_are_reported_and_the_rest_done(acme, admin_as, world):
    client = admin_as("front_desk")
    with in_clinic(acme):
        services.appointment_cancel(appointment=world.beta_visit, reason="x")
    with time_machine.travel(after(world.at(11)), tick=False):
        response = run_action(client, "no_show_selected", [world.alpha_visit, world.beta_visit])
    notes = messages_of(response)
    assert any("1 appointment(s) marked as no-show" in note for note in notes), notes
    assert any("1 refused" in note and "cancelled appointment" in note for note in notes), notes
    with in_clinic(acme):
        assert Appointment.objects.get(pk=world.alpha_visit.pk).status == "no_show"
        assert Appointment.objects.get(pk=world.alpha_visit.pk).unit_reservation.state == "released"


def test_bulk_cancel_asks_for_the_reason_then_releases_the_units(acme, admin_as, world):
    client = admin_as("front_desk")
    visits = [world.alpha_visit, world.beta_visit]
    ask = run_action(client, "cancel_selected", visits)
    assert ask.status_code == 200
    assert b'name="reason"' in ask.content and str(world.patient).encode() in ask.content
    missing = run_action(client, "cancel_selected", visits, confirm="yes", reason="  ")
    assert missing.status_code == 200 and b"Give the reason" in missing.content
    with in_clinic(acme):
        assert not Appointment.objects.filter(status="cancelled").exists()
    done = run_action(client, "cancel_selected", visits, confirm="yes", reason="Snow storm")
    assert done.status_code == 302
    with in_clinic(acme):
        rows = Appointment.objects.all()
        assert {(a.status, a.cancellation_reason) for a in rows} == {("cancelled", "Snow storm")}
        assert rows.get(pk=world.alpha_visit.pk).unit_reservation.state == "released"
        world.line.refresh_from_db()
        assert world.line.units_scheduled == 0


def test_a_practitioner_completes_own_visits_in_bulk_but_not_others(acme, admin_as, world):
    client = admin_as("practitioner")
    with time_machine.travel(after(world.at(11)), tick=False):
        client.post(
            APPOINTMENTS,
            {
                "action": "complete_selected",
                "_selected_action": [world.alpha_visit.pk, world.beta_visit.pk],
            },
        )
        refused = run_action(client, "cancel_selected", [world.alpha_visit], confirm="yes",
                             reason="x")  # fmt: skip
    with in_clinic(acme):
        assert Appointment.objects.get(pk=world.alpha_visit.pk).status == "completed"
        assert Appointment.objects.get(pk=world.beta_visit.pk).status == "booked"  # not theirs
    # an action the role lacks is not offered: Django answers with the list, nothing done
    assert refused.status_code in (200, 302)
    with in_clinic(acme):
        assert Appointment.objects.get(pk=world.alpha_visit.pk).cancellation_reason == ""


def test_a_biller_runs_no_action(acme, admin_as, world):
    response = run_action(admin_as("biller"), "cancel_selected", [world.alpha_visit],
                          confirm="yes", reason="x")  # fmt: skip
    assert response.status_code in (200, 302)
    with in_clinic(acme):
        assert Appointment.objects.get(pk=world.alpha_visit.pk).status == "booked"


# --- The detail page -------------------------------------------------------------------------


def test_detail_shows_the_authorization_reservation(admin_as, world):
    page = admin_as("front_desk").get(f"{APPOINTMENTS}{world.alpha_visit.pk}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    authorization = world.line.authorization
    assert f"authorization <strong>{authorization.number}</strong>" in body
    assert f"/admin/authorizations/authorization/{authorization.pk}/change/" in body
    assert (
        f"/admin/authorizations/unitreservation/{world.alpha_visit.unit_reservation_id}/change/"
        in body
    )
    assert "4 unit(s) <strong>reserved</strong>" in body
    assert "4 / 40 units" in body  # the line's utilisation bar
    assert "history" in body.lower() and "booked" in body


def test_a_practitioner_sees_the_reservation_without_ledger_links(admin_as, world):
    body = admin_as("practitioner").get(f"{APPOINTMENTS}{world.alpha_visit.pk}/change/").content
    assert b"4 unit(s) <strong>reserved</strong>" in body
    assert b"/admin/authorizations/unitreservation/" not in body


def _change_form(client, appointment) -> dict:
    page = client.get(f"{APPOINTMENTS}{appointment.pk}/change/")
    data = {"notes": "Bring the visual schedule."}
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name, value in management.initial.items():
            data[f"{management.prefix}-{name}"] = value
    return data


def test_notes_are_the_only_thing_edited_here(acme, admin_as, world):
    client = admin_as("front_desk")
    data = _change_form(client, world.alpha_visit)
    data["status"] = "completed"  # ignored: read-only
    saved = client.post(f"{APPOINTMENTS}{world.alpha_visit.pk}/change/", data)
    assert saved.status_code == 302, saved.content[:2000]
    with in_clinic(acme):
        visit = Appointment.objects.get(pk=world.alpha_visit.pk)
        assert visit.notes == "Bring the visual schedule." and visit.status == "booked"
    biller = admin_as("biller")
    refused = biller.post(f"{APPOINTMENTS}{world.alpha_visit.pk}/change/", data)
    assert refused.status_code == 403


# --- Smart-booking jobs ----------------------------------------------------------------------


@pytest.fixture
def jobs(acme, world):
    from django.utils import timezone

    with in_clinic(acme):
        done = SmartBookingJob.objects.create(
            patient=world.patient,
            request={"specialty": "behavior-analysis"},
            status="completed",
            started_at=timezone.now(),
            completed_at=timezone.now(),
            reasons=["Booked with Dr. Alpha, whom Robin saw before."],
            result={"appointments": [{"id": world.alpha_visit.pk, "start": "10:00"}]},
        )
        failed = SmartBookingJob.objects.create(
            patient=world.other_patient,
            request={"specialty": "cardiology"},
            status="failed",
            completed_at=timezone.now(),
            error_message="No cardiologist is free in those two weeks.",
        )
        queued = SmartBookingJob.objects.create(patient=world.patient, request={})
    return {"done": done, "failed": failed, "queued": queued}


def test_smart_booking_jobs_list_filters_and_detail(admin_as, jobs):
    client = admin_as("front_desk")
    base = "/admin/scheduling/smartbookingjob/"
    assert len(listed(client.get(base))) == 3
    failed = listed(client.get(base, {"status__exact": "failed"}))
    assert [job.pk for job in failed] == [jobs["failed"].pk]
    page = client.get(base).content.decode()
    assert "No cardiologist is free" in page and "whom Robin saw before" in page
    detail = client.get(f"{base}{jobs['done'].pk}/change/")
    assert detail.status_code == 200
    assert b"whom Robin saw before" in detail.content
    assert b"/admin/scheduling/appointment/" in detail.content  # the booked visit, linked
    assert b'name="_save"' not in detail.content  # read-only
    assert client.get(f"{base}add/").status_code == 403


@pytest.mark.parametrize(("role", "status"), [("clinic_admin", 200), ("integrator", 200),
                                              ("practitioner", 403), ("biller", 403)])  # fmt: skip
def test_smart_booking_jobs_by_role(role, status, admin_as, jobs):
    assert admin_as(role).get("/admin/scheduling/smartbookingjob/").status_code == status


# --- Hours and time off ----------------------------------------------------------------------


def test_a_practitioner_keeps_their_own_time_off(acme, admin_as, world):
    with in_clinic(acme):
        TimeOff.objects.create(practitioner=world.beta, start=world.at(9), end=world.at(12))
    client = admin_as("practitioner")
    assert listed(client.get("/admin/scheduling/timeoff/")) == []
    form = client.get("/admin/scheduling/timeoff/add/")
    choices = {
        choice
        for choice, _ in form.context["adminform"].form.fields["practitioner"].choices
        if choice
    }
    assert {int(str(value)) for value in choices} == {world.alpha.pk}
    day = world.day + timedelta(days=1)
    added = client.post(
        "/admin/scheduling/timeoff/add/",
        {
            "practitioner": world.alpha.pk,
            "start_0": day.isoformat(),
            "start_1": "09:00",
            "end_0": day.isoformat(),
            "end_1": "12:00",
            "reason": "Dentist",
        },
    )
    assert added.status_code == 302, added.content[:1500]
    with in_clinic(acme):
        off = TimeOff.objects.get(reason="Dentist")
        assert off.practitioner == world.alpha
        assert off.start == f.local(day, 9)  # entered on the clinic's clock (New York)


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-30"])
def test_time_off_far_from_today_is_refused_by_the_admin_form(acme, admin_as, world, day):
    answer = admin_as("practitioner").post(
        "/admin/scheduling/timeoff/add/",
        {"practitioner": world.alpha.pk, "start_0": day, "start_1": "09:00", "end_0": day,
         "end_1": "12:00", "reason": "Far"},
    )  # fmt: skip
    assert answer.status_code == 200
    assert set(answer.context["adminform"].form.errors) == {"start", "end"}
    with in_clinic(acme):
        assert not TimeOff.objects.filter(reason="Far").exists()


def test_hours_are_the_clinic_admins(acme, admin_as, world):
    assert admin_as("front_desk").get("/admin/scheduling/workinghours/").status_code == 200
    assert admin_as("front_desk").get("/admin/scheduling/workinghours/add/").status_code == 403
    assert admin_as("biller").get("/admin/scheduling/workinghours/").status_code == 403
    own = listed(admin_as("practitioner").get("/admin/scheduling/workinghours/"))
    assert {hours.practitioner_id for hours in own} == {world.alpha.pk}
    added = admin_as("clinic_admin").post(
        "/admin/scheduling/workinghours/add/",
        {"practitioner": world.beta.pk, "weekday": 5, "start_time": "08:00", "end_time": "12:00",
         "location": world.downtown.pk},
    )  # fmt: skip
    assert added.status_code == 302
    with in_clinic(acme):
        assert WorkingHours.objects.filter(practitioner=world.beta, start_time="08:00").exists()


def test_a_practitioner_opening_another_practitioners_visit_or_patient_gets_403(acme, make_user):
    from scheduling import services as booking
    from scheduling.tests import factories as sf
    from tests.fixtures import ClinicClient

    user = make_user(acme, "practitioner", email="own@acme.test")
    with in_clinic(acme):
        mine = sf.practitioner(user=user)
        theirs = sf.practitioner()
        t = sf.appointment_type(mine, theirs)
        stranger = sf.patient()
        visit = booking.appointment_book(
            patient=stranger, practitioner=theirs, appointment_type=t,
            start=sf.local(sf.next_weekday(2), 10),
        )  # fmt: skip
    client = ClinicClient(acme)
    assert client.login(email="own@acme.test", password="a-long-test-password")
    page = client.get(f"/admin/scheduling/appointment/{visit.pk}/change/")
    assert page.status_code == 403
    assert client.get(f"/admin/practice/patient/{stranger.pk}/change/").status_code == 403
    assert client.get("/admin/scheduling/appointment/999999/change/").status_code == 302

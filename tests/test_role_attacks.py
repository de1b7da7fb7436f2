"""Issue 15's findings, tried again as an attacker would: a practitioner reaching other
practitioners' patients and columns, the front desk writing working hours, a biller reading
hours and time off, integrators and practitioners kept from time off. Each is now what the
README's role table says, and a refused write leaves the database as it was."""

from datetime import timedelta

import pytest

from authorizations.tests import factories as af
from scheduling.models import Appointment, AppointmentSeries, TimeOff, WorkingHours
from scheduling.tests.factories import build_world
from tests.fixtures import in_clinic


@pytest.fixture
def world(acme, make_user, client_for):
    """Alpha is the practitioner user's column and sees Robin; Beta sees Casey."""
    users = {role: make_user(acme, role) for role in
             ("practitioner", "front_desk", "clinic_admin", "biller", "integrator")}  # fmt: skip
    with in_clinic(acme):
        world = build_world(users["practitioner"])
        casey_authorization, _ = af.authorization(world.other_patient, world.visit.service_code)
        TimeOff.objects.create(
            practitioner=world.beta, start=world.at(9) + timedelta(days=1),
            end=world.at(10) + timedelta(days=1),
        )  # fmt: skip
    world.clients = {role: client_for(acme, user) for role, user in users.items()}
    world.casey_authorization = casey_authorization
    world.acme = acme
    return world


def _problem(response, status: int, code: str = "permission-denied") -> None:
    assert response.status_code == status, response.content[:300]
    assert response.json()["code"] == code


def _post(client, url: str, body: dict | None = None):
    return client.post(url, body or {}, "application/json")


def test_a_practitioner_lists_only_the_patients_they_see(world):
    client = world.clients["practitioner"]
    listed = client.get("/api/v1/patients/").json()["results"]
    assert [row["id"] for row in listed] == [world.patient.pk]
    _problem(client.get(f"/api/v1/patients/{world.other_patient.pk}/"), 404, "not-found")
    theirs = client.get(f"/api/v1/patients/{world.other_patient.pk}/appointments/")
    _problem(theirs, 403)


def test_a_practitioner_reads_only_their_patients_authorizations(world):
    client = world.clients["practitioner"]
    listed = client.get("/api/v1/authorizations/").json()["results"]
    assert {row["patient"] for row in listed} == {world.patient.pk}
    other = client.get(f"/api/v1/authorizations/{world.casey_authorization.pk}/")
    _problem(other, 404, "not-found")


def test_a_practitioner_books_in_no_column(world):
    client = world.clients["practitioner"]
    booking = {"appointment_type": world.visit.pk, "start": world.at(15).isoformat()}
    theirs = {**booking, "patient": world.other_patient.pk, "practitioner": world.beta.pk}
    own = {**booking, "patient": world.patient.pk, "practitioner": world.alpha.pk}
    _problem(_post(client, "/api/v1/appointments/", theirs), 403)
    _problem(_post(client, "/api/v1/appointments/", own), 403)  # the desk books
    series = {**theirs, "rrule": "FREQ=WEEKLY;COUNT=2"}
    _problem(_post(client, "/api/v1/appointment-series/", series), 403)
    with in_clinic(world.acme):
        assert Appointment.objects.count() == 2
        assert not AppointmentSeries.objects.exists()


@pytest.mark.parametrize("action", ["cancel", "check-in", "no-show", "reschedule"])
def test_a_practitioner_changes_no_visit_but_completing_their_own(action, world):
    client = world.clients["practitioner"]
    body = {"start": world.at(15).isoformat()} if action == "reschedule" else {}
    for visit in (world.alpha_visit, world.beta_visit):
        _problem(_post(client, f"/api/v1/appointments/{visit.pk}/{action}/", body), 403)
    not_theirs = _post(client, f"/api/v1/appointments/{world.beta_visit.pk}/complete/")
    _problem(not_theirs, 404, "not-found")
    with in_clinic(world.acme):
        assert set(Appointment.objects.values_list("status", "start")) == {
            ("booked", world.alpha_visit.start),
            ("booked", world.beta_visit.start),
        }


def test_the_clinic_admin_keeps_working_hours_and_the_front_desk_reads_them(world):
    desk, boss = world.clients["front_desk"], world.clients["clinic_admin"]
    hours = {"practitioner": world.beta.pk, "weekday": 6, "start_time": "06:00",
             "end_time": "07:00"}  # fmt: skip
    with in_clinic(world.acme):
        before = WorkingHours.objects.count()
        beta_hours = WorkingHours.objects.filter(practitioner=world.beta).first().pk
    _problem(_post(desk, "/api/v1/working-hours/", hours), 403)
    _problem(desk.delete(f"/api/v1/working-hours/{beta_hours}/"), 403)
    assert desk.get(f"/api/v1/working-hours/{beta_hours}/").status_code == 200
    with in_clinic(world.acme):
        assert WorkingHours.objects.count() == before
    assert _post(boss, "/api/v1/working-hours/", hours).status_code == 201
    assert boss.delete(f"/api/v1/working-hours/{beta_hours}/").status_code == 204
    with in_clinic(world.acme):
        assert WorkingHours.objects.count() == before


def test_a_biller_reads_neither_hours_nor_time_off(world):
    biller = world.clients["biller"]
    with in_clinic(world.acme):
        hours = WorkingHours.objects.first().pk
        off = TimeOff.objects.first().pk
    for url in ("/api/v1/working-hours/", f"/api/v1/working-hours/{hours}/",
                "/api/v1/time-off/", f"/api/v1/time-off/{off}/"):  # fmt: skip
        _problem(biller.get(url), 403)


def _time_off(practitioner, world, days: int = 3) -> dict:
    start = world.at(9) + timedelta(days=days)
    return {
        "practitioner": practitioner.pk,
        "start": start.isoformat(),
        "end": (start + timedelta(hours=2)).isoformat(),
        "reason": "Conference",
    }


def test_integrators_keep_everyones_time_off(world):
    client = world.clients["integrator"]
    created = _post(client, "/api/v1/time-off/", _time_off(world.beta, world))
    assert created.status_code == 201, created.content
    url = f"/api/v1/time-off/{created.json()['id']}/"
    changed = client.patch(url, {"reason": "Training"}, "application/json")
    assert changed.status_code == 200 and changed.json()["reason"] == "Training"
    assert client.delete(url).status_code == 204


def test_a_practitioner_keeps_their_own_time_off_only(world):
    client = world.clients["practitioner"]
    listed = client.get("/api/v1/time-off/").json()["results"]
    assert listed == []  # Beta's is not theirs
    _problem(_post(client, "/api/v1/time-off/", _time_off(world.beta, world)), 403)
    created = _post(client, "/api/v1/time-off/", _time_off(world.alpha, world))
    assert created.status_code == 201, created.content
    url = f"/api/v1/time-off/{created.json()['id']}/"
    moved = client.patch(url, {"practitioner": world.beta.pk}, "application/json")
    _problem(moved, 403)
    assert client.patch(url, {"reason": "Dentist"}, "application/json").status_code == 200
    with in_clinic(world.acme):
        beta_off = TimeOff.objects.get(practitioner=world.beta).pk
        assert TimeOff.objects.get(reason="Dentist").practitioner_id == world.alpha.pk
    _problem(client.delete(f"/api/v1/time-off/{beta_off}/"), 404, "not-found")
    assert client.delete(url).status_code == 204
    with in_clinic(world.acme):
        assert list(TimeOff.objects.values_list("practitioner_id", flat=True)) == [world.beta.pk]


def test_integrators_book_but_never_overbook(world):
    booking = {"patient": world.other_patient.pk, "practitioner": world.alpha.pk,
               "appointment_type": world.visit.pk, "start": world.at(10).isoformat(),
               "overbook": True}  # fmt: skip
    refused = _post(world.clients["integrator"], "/api/v1/appointments/", booking)
    _problem(refused, 403, "overbook-not-allowed")
    booked = _post(world.clients["front_desk"], "/api/v1/appointments/", booking)
    assert booked.status_code == 201 and booked.json()["overbooked"] is True

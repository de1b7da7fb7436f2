"""Every path that reads or writes a patient's data leaves its events, each exactly once: the
API, the admin, the patient pages, the schedule board, calendar feeds and exports."""

from collections import Counter
from datetime import timedelta

import pytest
from django.db.models.fields.files import FieldFile

from audit.models import AuditEvent
from scheduling.models import Appointment, CalendarFeed
from scheduling.tests import factories as f
from tests.fixtures import in_clinic, session_client


@pytest.fixture
def world(acme, make_user):
    """build_world's clinic, its patient Robin linked to a patient user, and one user of each
    role that reads or edits patients."""
    users = {
        role: make_user(acme, role)
        for role in ("clinic_admin", "front_desk", "integrator", "patient", "practitioner")
    }
    with in_clinic(acme):
        world = f.build_world()
        world.patient.user = users["patient"]
        world.patient.save(update_fields=["user"])
    world.users = users
    return world


def _events(acme, **filters) -> list[AuditEvent]:
    with in_clinic(acme):
        return list(
            AuditEvent.objects.filter(**filters).select_related("content_type").order_by("id")
        )


def _shape(event: AuditEvent) -> tuple:
    model = event.content_type.model if event.content_type_id else event.object_label
    return (event.action, model, event.object_id, event.patient_id, tuple(event.fields))


def _of(response, acme) -> list[tuple]:
    """The events of one request (by the id it was answered with)."""
    return [_shape(e) for e in _events(acme, request_id=response["X-Request-ID"])]


def _admin_form_data(page) -> dict:
    """What the admin's change form would post back unchanged (main form and inlines)."""
    data = {}
    forms = [page.context["adminform"].form]
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        data.update({management.add_prefix(k): v for k, v in management.initial.items()})
        forms += formset.forms
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if isinstance(value, FieldFile):
                continue  # a browser posts no part for a file input left alone
            data[form.add_prefix(name)] = "" if value is None else value
    return data


def test_a_patient_read_and_edited_through_api_admin_and_portal_leaves_each_event_once(
    acme, world, client_for
):
    robin = world.patient
    pk, patient = str(robin.pk), robin.pk
    visit = str(world.alpha_visit.pk)

    api = client_for(acme, world.users["integrator"])
    read = api.get(f"/api/v1/patients/{pk}/")
    assert read.status_code == 200
    assert _of(read, acme) == [("read", "patient", pk, patient, ())]
    edit = api.patch(
        f"/api/v1/patients/{pk}/", {"phone": "+1 212 555 0199"}, content_type="application/json"
    )
    assert edit.status_code == 200, edit.content
    assert _of(edit, acme) == [("update", "patient", pk, patient, ("phone",))]

    admin = session_client(acme, world.users["clinic_admin"])
    page = admin.get(f"/admin/practice/patient/{pk}/change/")
    assert page.status_code == 200
    assert _of(page, acme) == [("read", "patient", pk, patient, ())]
    data = {**_admin_form_data(page), "city": "Albany", "_save": "Save"}
    saved = admin.post(f"/admin/practice/patient/{pk}/change/", data)
    assert saved.status_code == 302, saved.context["adminform"].form.errors if saved.context else ""
    assert _of(saved, acme) == [("update", "patient", pk, patient, ("city",))]

    portal = session_client(acme, world.users["patient"])
    visits = portal.get("/appointments/")
    assert visits.status_code == 200
    assert Counter(_of(visits, acme)) == Counter(
        [
            ("read", "appointment", visit, patient, ()),
            ("read", "authorization", str(world.line.authorization_id), patient, ()),
        ]
    )
    cancel = portal.post(f"/appointments/{visit}/cancel/", {"reason": "Feeling better"})
    assert cancel.status_code == 302
    [(action, model, object_id, owner, fields)] = _of(cancel, acme)
    assert (action, model, object_id, owner) == ("update", "appointment", visit, patient)
    assert {"status", "cancelled_at", "cancellation_reason"} <= set(fields)

    # Each request left its events once, and nothing else was recorded about Robin.
    everything = _events(acme, patient_id=patient)
    assert len(everything) == 1 + 1 + 1 + 1 + 2 + 1
    by_user = Counter(e.user_id for e in everything)
    assert by_user == {
        world.users["integrator"].pk: 2,
        world.users["clinic_admin"].pk: 2,
        world.users["patient"].pk: 3,
    }
    assert {(e.schema_name, e.ip) for e in everything} == {("acme", "127.0.0.1")}
    assert "Albany" not in repr([vars(e) for e in everything])


def test_api_lists_record_one_read_per_row_on_the_page(acme, world, client_for):
    api = client_for(acme, world.users["front_desk"])
    patients = api.get("/api/v1/patients/")
    assert patients.status_code == 200
    shown = {row["id"] for row in patients.json()["results"]}
    assert len(shown) == 2
    assert sorted(_of(patients, acme)) == sorted(
        ("read", "patient", str(pk), pk, ()) for pk in shown
    )
    visits = api.get("/api/v1/appointments/")
    assert Counter(e[0:2] for e in _of(visits, acme)) == {("read", "appointment"): 2}
    own = api.get(f"/api/v1/patients/{world.patient.pk}/appointments/")
    assert _of(own, acme) == [
        ("read", "appointment", str(world.alpha_visit.pk), world.patient.pk, ())
    ]
    authorizations = api.get("/api/v1/authorizations/")
    assert _of(authorizations, acme) == [
        ("read", "authorization", str(world.line.authorization_id), world.patient.pk, ())
    ]


def test_api_writes_record_what_they_created_and_changed(acme, world, client_for):
    api = client_for(acme, world.users["front_desk"])
    visit = world.alpha_visit
    moved = api.post(
        f"/api/v1/appointments/{visit.pk}/reschedule/",
        {"start": f.after(visit.end, 60).isoformat()},
        content_type="application/json",
    )
    assert moved.status_code == 200, moved.content
    [(action, model, _, owner, fields)] = _of(moved, acme)
    assert (action, model, owner) == ("update", "appointment", world.patient.pk)
    assert {"start", "end"} <= set(fields)
    booked = api.post(
        "/api/v1/appointments/",
        {
            "patient": world.other_patient.pk,
            "practitioner": world.gamma.pk,
            "appointment_type": world.visit.pk,
            "start": f.local(world.day, 14).isoformat(),
        },
        content_type="application/json",
    )
    assert booked.status_code == 201, booked.content
    assert _of(booked, acme) == [
        ("create", "appointment", str(booked.json()["id"]), world.other_patient.pk, ())
    ]
    refused = api.post(f"/api/v1/appointments/{visit.pk}/no-show/")
    assert refused.status_code >= 400
    assert _of(refused, acme) == []  # nothing was served
    job = api.post(
        "/api/v1/smart-bookings/",
        {
            "patient": world.other_patient.pk,
            "appointment_type": world.visit.pk,
            "practitioner": world.gamma.pk,
            "earliest_date": world.day.isoformat(),
            "latest_date": (world.day + timedelta(days=7)).isoformat(),
        },
        content_type="application/json",
    )
    assert job.status_code == 202, job.content
    assert _of(job, acme) == [
        ("create", "smartbookingjob", job.json()["job_id"], world.other_patient.pk, ())
    ]


def test_the_patient_self_service_routes_are_recorded(acme, world, client_for):
    api = client_for(acme, world.users["patient"])
    mine = api.get("/api/v1/me/patient/")
    assert _of(mine, acme) == [("read", "patient", str(world.patient.pk), world.patient.pk, ())]
    changed = api.patch("/api/v1/me/patient/", {"phone": "555"}, content_type="application/json")
    assert changed.status_code == 200, changed.content
    assert _of(changed, acme) == [
        ("update", "patient", str(world.patient.pk), world.patient.pk, ("phone",))
    ]
    ics = api.get(f"/api/v1/appointments/{world.alpha_visit.pk}/ics/")
    assert ics.status_code == 200
    assert _of(ics, acme) == [
        ("read", "appointment", str(world.alpha_visit.pk), world.patient.pk, ())
    ]


def test_a_calendar_feed_records_each_visit_it_shows(acme, world):
    with in_clinic(acme):
        feed = CalendarFeed.objects.create(practitioner=world.alpha)
    response = session_client(acme, None).get(f"/calendar/{feed.token}.ics")
    assert response.status_code == 200
    [event] = _events(acme, request_id=response["X-Request-ID"])
    assert (event.object_label, event.object_id, event.patient_id, event.user_id) == (
        "calendar feed",
        str(world.alpha_visit.pk),
        world.patient.pk,
        None,
    )


def test_the_admin_records_lists_pages_actions_and_the_board(acme, world):
    admin = session_client(acme, world.users["front_desk"])
    listing = admin.get("/admin/scheduling/appointment/")
    assert listing.status_code == 200
    assert Counter(e[0:2] for e in _of(listing, acme)) == {("read", "appointment"): 2}
    history = admin.get(f"/admin/practice/patient/{world.patient.pk}/history/")
    assert _of(history, acme) == [("read", "patient", str(world.patient.pk), world.patient.pk, ())]
    action = admin.post(
        "/admin/scheduling/appointment/",
        {
            "action": "cancel_selected",
            "_selected_action": [world.beta_visit.pk],
            "reason": "Clinic closed",
            "confirm": "1",
        },
    )
    assert action.status_code == 302
    with in_clinic(acme):
        assert Appointment.objects.get(pk=world.beta_visit.pk).status == "cancelled"
    assert _of(action, acme) == [
        ("update", "appointment", str(world.beta_visit.pk), world.other_patient.pk, ())
    ]
    [event] = _events(acme, request_id=action["X-Request-ID"])
    assert event.object_label == "cancel_selected"
    board = admin.get("/admin/scheduling/board/", {"date": world.day.isoformat()})
    assert board.status_code == 200
    assert _of(board, acme) == [  # the cancelled visit is not on the board
        ("read", "appointment", str(world.alpha_visit.pk), world.patient.pk, ())
    ]
    search = admin.get("/admin/scheduling/board/patients/", {"q": "Robin"})
    assert _of(search, acme) == [("read", "patient", str(world.patient.pk), world.patient.pk, ())]

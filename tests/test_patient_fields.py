"""Issue 16: what staff write about a patient's records never reaches the patient.

The walk is generated from the API's URL conf: every GET route a patient may call (public, any
signed-in user, or a view's self-service action on a SELF grant), on the patient's own rows,
where staff have left notes and flags. No staff-only field (every serializer's
`staff_only_fields`) may appear as a key anywhere in the JSON, and the staff's words in no
answer at all. `test_the_walk_finds_the_leak_without_the_filter` proves the walk would see one.
"""

from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.urls import get_resolver, reverse

from authorizations.models import Authorization, AuthorizationRequest
from billing.models import Charge, Episode, EpisodeDiagnosis, Payment
from clinic import privacy
from clinic.permissions import (
    SELF,
    SIGNED_IN,
    permission_scopes,
    required_permission,
    view_action,
)
from practice.models import Patient
from scheduling.models import Appointment, AppointmentSeries, Closure, SmartBookingJob
from scheduling.tests.factories import build_world
from tests.fixtures import in_clinic, session_client
from tests.test_role_matrix import api_views
from waitlist.models import WaitlistEntry, WaitlistOffer

SECRET = "Staff only: owes 40 USD, difficult on the phone"


def staff_only_fields() -> set[str]:
    """Every serializer's `staff_only_fields` (once the URL conf has imported them)."""
    get_resolver("clinic.urls_tenants").url_patterns  # noqa: B018 (imports every API)
    found: set[str] = set()
    todo = [privacy.StaffOnlyFieldsMixin]
    while todo:
        cls = todo.pop()
        found |= set(cls.staff_only_fields)
        todo.extend(cls.__subclasses__())
    return found


@pytest.fixture
def world(acme, make_user, client_for):
    """Robin's account with their visit, authorization, series and smart-booking job, each
    carrying what the front desk wrote and decided."""
    patient_user = make_user(acme, "patient")
    desk = make_user(acme, "front_desk")
    with in_clinic(acme):
        world = build_world()
        Patient.objects.filter(pk=world.patient.pk).update(user=patient_user)
        Appointment.objects.filter(patient=world.patient).update(
            notes=SECRET, booked_by=desk, overbooked=True, overbooked_by=desk
        )
        Authorization.objects.filter(patient=world.patient).update(notes=SECRET)
        AppointmentSeries.objects.create(
            patient=world.patient,
            practitioner=world.alpha,
            appointment_type=world.visit,
            rrule="FREQ=WEEKLY;COUNT=2",
            first_start=world.alpha_visit.start,
            timezone="America/New_York",
            created_by=desk,
        )
        SmartBookingJob.objects.create(patient=world.patient, request={"tz": "UTC"})
        # Billing rows of the patient: a charge of their visit and a payment at the desk.
        episode = Episode.objects.create(patient=world.patient, start_date=date(2026, 1, 1))
        EpisodeDiagnosis.objects.create(episode=episode, rank=1, code="F84.0")
        Charge.objects.create(
            appointment=world.alpha_visit,
            patient=world.patient,
            episode=episode,
            service_code=world.visit.service_code,
            service_date=world.day,
            units=4,
            place_of_service="11",
            diagnosis_pointers=[1],
            amount=Decimal("200.00"),
            rendering=world.alpha,
            status=Charge.Status.SELF_PAY,
        )
        Payment.objects.create(
            patient=world.patient,
            method=Payment.Method.CASH,
            amount=Decimal("20.00"),
            received_at=world.alpha_visit.start,
            taken_by=desk,
        )
        # A request for an authorization, declined with the clinic's reason.
        AuthorizationRequest.objects.create(
            patient=world.patient,
            service_code=world.visit.service_code,
            message="Please assess",
            status=AuthorizationRequest.Status.DECLINED,
            requested_at=world.alpha_visit.start,
            requested_by=patient_user,
            decided_at=world.alpha_visit.start,
            decided_by=desk,
            decline_reason="Referral missing",
        )
        # A waitlist entry of the patient and an offer it had, declined.
        entry = WaitlistEntry.objects.create(
            patient=world.patient,
            practitioner=world.alpha,
            appointment_type=world.visit,
            earliest_date=world.day,
            latest_date=world.day,
            created_by=desk,
        )
        start = world.alpha_visit.start + timedelta(hours=3)
        WaitlistOffer.objects.create(
            entry=entry,
            patient=world.patient,
            practitioner=world.alpha,
            appointment_type=world.visit,
            start=start,
            end=start + timedelta(hours=1),
            blocked=(start, start + timedelta(hours=1)),
            status=WaitlistOffer.Status.DECLINED,
            expires_at=start,
            decided_at=start,
        )
        # A holiday far from the world's day: the closures' detail route has a row to read.
        Closure.objects.create(
            name="Christmas", start_date=date(2099, 12, 25), end_date=date(2099, 12, 26)
        )
    world.acme, world.patient_user = acme, patient_user
    world.client = client_for(acme, patient_user)
    world.desk = client_for(acme, desk)
    return world


def _patient_routes(user) -> list[tuple[str, Any, bool]]:
    """(route name, view class, whether a self-service action serves it) of every GET route
    `user` (a patient) may call."""
    routes = []
    for pattern, cls, actions in api_views():
        if "get" not in actions:
            continue
        view = cls(**getattr(pattern.callback, "initkwargs", {}))
        if actions.get("get") is not None:
            view.action_map, view.action = actions, actions["get"]
        request = SimpleNamespace(method="GET")
        action = view_action(request, view)
        if action is None:
            continue
        required = required_permission(request, view)
        self_service = action in getattr(view, "self_service_actions", ()) and (
            SELF in permission_scopes(user, required or "")
        )
        if required is None or required == SIGNED_IN or self_service:
            routes.append((pattern, view, self_service))
    return routes


def _url(pattern, view, patient: Patient) -> str:
    """The route on the patient's own rows: `patient_id` (`patient_pk`) is theirs, `pk` their
    row of the view's model (the model's first row when it is not a patient's)."""
    kwargs: dict[str, Any] = {}
    names = set(pattern.pattern.regex.groupindex)
    for name in names - {"pk"}:
        assert name.startswith("patient_"), f"{pattern.name}: which row is {name}?"
        kwargs[name] = patient.pk
    if "pk" in names:
        model = apps.get_model(view.permission_model)
        if model is Patient:
            rows = model.objects.filter(pk=patient.pk)
        elif any(f.name == "patient" for f in model._meta.get_fields()):
            rows = model.objects.filter(patient=patient)
        else:
            rows = model.objects.all()
        row = rows.first()
        assert row is not None, f"no row of {model} for {pattern.name}"
        kwargs["pk"] = row.pk
    return reverse(pattern.name, kwargs=kwargs, urlconf="clinic.urls_tenants")


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def _walk(world) -> dict[str, set[str]]:
    """Route -> the staff-only field names (or "the staff's words") its answer showed."""
    leaks: dict[str, set[str]] = {}
    staff_only = staff_only_fields()
    with in_clinic(world.acme):
        patient = Patient.objects.get(pk=world.patient.pk)
        routes = [(p, v, s, _url(p, v, patient)) for p, v, s in _patient_routes(patient.user)]
    assert {p.name for p, *_ in routes} >= {
        "my-appointments-list",
        "patient-appointments-list",
        "appointment-list",
        "appointment-detail",
        "authorization-list",
        "authorization-detail",
        "smart-booking-detail",
    }
    for _pattern, _view, self_service, url in routes:
        answer = world.client.get(url)
        assert answer.status_code < 500, (url, answer.content[:300])
        if self_service:
            assert answer.status_code == 200, (url, answer.content[:300])
        found = set()
        if SECRET.encode() in answer.content:
            found.add("the staff's words")
        if answer.get("Content-Type", "").startswith("application/json"):
            found |= _keys(answer.json()) & staff_only
        if found:
            leaks[f"GET {url}"] = found
    return leaks


def test_the_staff_only_fields_are_named():
    assert {"notes", "booked_by", "overbooked"} <= staff_only_fields()


def test_no_staff_only_field_reaches_a_patient_on_any_api_route(world):
    assert _walk(world) == {}


def test_staff_still_read_what_they_wrote(world):
    visit = world.desk.get(f"/api/v1/appointments/{world.alpha_visit.pk}/").json()
    assert visit["notes"] == SECRET and visit["overbooked"] is True and visit["booked_by"]
    listed = world.desk.get("/api/v1/authorizations/").json()["results"]
    assert SECRET in {row["notes"] for row in listed}


def test_the_walk_finds_the_leak_without_the_filter(world, monkeypatch):
    monkeypatch.setattr(privacy, "reads_as_staff", lambda request, model: True)
    leaks = _walk(world)
    for route in ("/me/appointments/", f"/patients/{world.patient.pk}/appointments/"):
        assert {"notes", "booked_by", "overbooked", "the staff's words"} <= leaks[
            f"GET /api/v1{route}"
        ]
    assert "notes" in leaks["GET /api/v1/authorizations/"]


def test_the_patients_pages_show_no_staff_notes(world):
    client = session_client(world.acme, world.patient_user)
    page = client.get("/appointments/")
    assert page.status_code == 200
    assert world.alpha_visit.practitioner.display_name.encode() in page.content
    assert SECRET.encode() not in page.content
    detail = client.get(f"/api/v1/appointments/{world.alpha_visit.pk}/ics/")
    assert detail.status_code == 200 and SECRET.encode() not in detail.content


def test_a_patients_own_bookings_answer_without_staff_only_fields(world):
    """Writes answer with the same representation: a visit and a series booked by the patient."""
    booking = {
        "practitioner": world.alpha.pk,
        "appointment_type": world.visit.pk,
        "start": world.at(14).isoformat(),
    }
    booked = world.client.post("/api/v1/appointments/", booking, "application/json")
    assert booked.status_code == 201, booked.content[:300]
    series = world.client.post(
        "/api/v1/appointment-series/",
        {**booking, "start": world.at(16).isoformat(), "rrule": "FREQ=WEEKLY;COUNT=2"},
        "application/json",
    )
    assert series.status_code == 201, series.content[:300]
    cancelled = world.client.post(
        f"/api/v1/appointment-series/{series.json()['series']['id']}/cancel/",
        {},
        "application/json",
    )
    assert cancelled.status_code == 200, cancelled.content[:300]
    for answer in (booked, series, cancelled):
        assert not _keys(answer.json()) & staff_only_fields()
    assert "booked_by" in _keys(world.desk.get("/api/v1/appointments/").json())

"""`/api/v1/waitlist/` and `/api/v1/waitlist/offers/`: a patient keeps their own entries and
answers their own offers, the front desk everyone's; bad input names its field."""

from datetime import timedelta

import pytest

from scheduling import services as scheduling
from scheduling.tests import factories as f
from tests.fixtures import in_clinic

from .. import services
from ..models import WaitlistEntry, WaitlistOffer
from .factories import waiting_world


@pytest.fixture
def world(acme, make_user, client_for):
    desk = make_user(acme, "front_desk")
    me_user, other_user = make_user(acme, "patient"), make_user(acme, "patient")
    with in_clinic(acme):
        w = waiting_world()
        me = f.patient(user=me_user, first="Mia")
        other = f.patient(user=other_user, first="Otto")
    return {
        "w": w, "me": me, "other": other, "acme": acme,
        "desk": client_for(acme, desk), "patient": client_for(acme, me_user),
        "other_client": client_for(acme, other_user),
    }  # fmt: skip


def _body(world, **extra) -> dict:
    w = world["w"]
    return {
        "practitioner": w.practitioner.pk,
        "appointment_type": w.kind.pk,
        "earliest_date": (w.day - timedelta(days=2)).isoformat(),
        "latest_date": (w.day + timedelta(days=2)).isoformat(),
        "preferred_weekdays": [0, 1, 2, 3, 4],
        **extra,
    }


def test_a_patient_adds_themselves_and_reads_only_their_own(world):
    made = world["patient"].post("/api/v1/waitlist/", _body(world), "application/json")
    assert made.status_code == 201, made.json()
    assert made.json()["patient"] == world["me"].pk
    assert made.json()["status"] == "waiting"
    assert made.json()["authorization_note"] == ""
    desk = world["desk"].post(
        "/api/v1/waitlist/", _body(world, patient=world["other"].pk), "application/json"
    )
    assert desk.status_code == 201
    listed = world["patient"].get("/api/v1/waitlist/").json()["results"]
    assert [row["id"] for row in listed] == [made.json()["id"]]
    assert len(world["desk"].get("/api/v1/waitlist/").json()["results"]) == 2
    other = world["patient"].get(f"/api/v1/waitlist/{desk.json()['id']}/")
    assert other.status_code == 404
    refused = world["patient"].post(
        "/api/v1/waitlist/", _body(world, patient=world["other"].pk), "application/json"
    )
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("extra", "field", "status"),
    [
        ({"latest_date": "2020-01-01"}, "latest_date", 422),
        ({"preferred_weekdays": [9]}, "preferred_weekdays.0", 400),
        ({"earliest_date": "31-12-2026"}, "earliest_date", 400),
        (
            {"preferred_start_time": "15:00", "preferred_end_time": "09:00"},
            "preferred_end_time",
            422,
        ),
        ({"earliest_date": "9999-01-01", "latest_date": "9999-01-02"}, "earliest_date", 422),
        ({"practitioner": None}, "practitioner", 422),
    ],
)
def test_bad_input_is_a_problem_naming_the_field(world, extra, field, status):
    response = world["patient"].post("/api/v1/waitlist/", _body(world, **extra), "application/json")
    assert response.status_code == status, response.json()
    assert field in response.json()["errors"], response.json()
    with in_clinic(world["acme"]):
        assert not WaitlistEntry.objects.exists()


def test_the_patient_accepts_their_offer_and_another_patient_cannot(world):
    w = world["w"]
    with in_clinic(world["acme"]):
        entry = w.entry(world["me"])
        cancelled = scheduling.appointment_cancel(appointment=w.visit, reason="Sick")
        offer = services.slot_offer(slot=services.freed_slot_of(cancelled, "cancelled", {}))
        assert offer is not None and offer.entry_id == entry.pk
    url = f"/api/v1/waitlist/offers/{offer.pk}/"
    assert world["other_client"].post(url + "accept/").status_code == 404
    mine = world["patient"].get("/api/v1/waitlist/offers/").json()["results"]
    assert [row["id"] for row in mine] == [offer.pk]
    accepted = world["patient"].post(url + "accept/")
    assert accepted.status_code == 200, accepted.json()
    assert accepted.json()["status"] == "accepted"
    again = world["patient"].post(url + "decline/")
    assert again.status_code == 409
    assert again.json()["type"].endswith("offer-closed")
    with in_clinic(world["acme"]):
        assert WaitlistOffer.objects.get(pk=offer.pk).appointment.patient_id == world["me"].pk


def test_taking_an_entry_off_withdraws_its_hold(world):
    w = world["w"]
    with in_clinic(world["acme"]):
        entry = w.entry(world["me"])
        cancelled = scheduling.appointment_cancel(appointment=w.visit, reason="Sick")
        offer = services.slot_offer(slot=services.freed_slot_of(cancelled, "cancelled", {}))
    assert world["patient"].delete(f"/api/v1/waitlist/{entry.pk}/").status_code == 204
    with in_clinic(world["acme"]):
        offer.refresh_from_db()
        entry.refresh_from_db()
    assert (entry.status, offer.status) == ("cancelled", "withdrawn")
    changed = world["patient"].patch(
        f"/api/v1/waitlist/{entry.pk}/", {"notes": "x"}, "application/json"
    )
    assert changed.status_code == 409

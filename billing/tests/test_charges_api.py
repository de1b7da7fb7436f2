"""The charges part of billing's API: /fee-schedules/, /episodes/, /charges/ (list, filter,
void, run) and /charges/unbilled/: problem details naming the field, roles, the audit trail,
and a biller of one clinic seeing nothing of another."""

from decimal import Decimal

import pytest

from audit.models import AuditEvent
from billing.models import Charge, Episode, FeeSchedule, LedgerEntry
from billing.tests import factories
from scheduling.tests import factories as f
from tests.fixtures import ClinicClient, in_clinic


@pytest.fixture
def api(acme, make_user, client_for):
    def client(role: str, clinic=acme, **kwargs):
        return client_for(clinic, make_user(clinic, role, **kwargs))

    return client


def test_a_biller_runs_charges_lists_filters_and_voids_them(acme, api):
    biller = api("biller")
    with in_clinic(acme):
        visit = factories.billable_visit()
        blocked = factories.billable_visit()
        blocked.episode.diagnoses.all().delete()
    unbilled = biller.get("/api/v1/charges/unbilled/")
    assert unbilled.status_code == 200, unbilled.json()
    rows = {row["appointment"]: row for row in unbilled.json()["results"]}
    assert rows[visit.appointment.pk]["billable"] is True
    assert rows[blocked.appointment.pk]["reasons"][0]["code"] == "no-diagnosis"
    run = biller.post("/api/v1/charges/run/", {}, content_type="application/json")
    assert run.status_code == 200, run.json()
    assert run.json()["created"] == 1 and run.json()["skipped"] == 1
    [charge_id] = run.json()["charges"]
    listed = biller.get(f"/api/v1/charges/?patient={visit.patient.pk}&status=open")
    assert [c["id"] for c in listed.json()["results"]] == [charge_id]
    charge = listed.json()["results"][0]
    assert charge["amount"] == "200.00" and charge["units"] == 4
    assert charge["service_code"] == "97153" and charge["payer"] == visit.payer.pk
    assert biller.get("/api/v1/charges/?status=void").json()["results"] == []
    other_payer = biller.get(f"/api/v1/charges/?payer={visit.payer.pk + 1000}")
    assert other_payer.status_code == 400 and "payer" in other_payer.json()["errors"]
    no_reason = biller.post(
        f"/api/v1/charges/{charge_id}/void/", {}, content_type="application/json"
    )
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["errors"]
    void = biller.post(
        f"/api/v1/charges/{charge_id}/void/",
        {"reason": "Wrong code"},
        content_type="application/json",
    )
    assert void.status_code == 200 and void.json()["status"] == "void"
    again = biller.post(
        f"/api/v1/charges/{charge_id}/void/", {"reason": "x"}, content_type="application/json"
    )
    assert again.status_code == 409 and again.json()["code"] == "charge-state"
    with in_clinic(acme):
        assert LedgerEntry.objects.filter(charge_id=charge_id).count() == 2
        events = AuditEvent.objects.filter(patient_id=visit.patient.pk)
        assert events.filter(action="create", content_type__model="charge").exists()
        assert events.filter(action="read", content_type__model="appointment").exists()
        assert events.filter(action="update", content_type__model="charge").exists()


def test_run_for_named_visits_refuses_bad_ids_naming_the_field(acme, api):
    biller = api("biller")
    bad = biller.post(
        "/api/v1/charges/run/", {"appointments": ["x"]}, content_type="application/json"
    )
    assert bad.status_code == 400 and "appointments.0" in bad.json()["errors"]
    with in_clinic(acme):
        visit, other = factories.billable_visit(), factories.billable_visit()
    run = biller.post(
        "/api/v1/charges/run/",
        {"appointments": [visit.appointment.pk]},
        content_type="application/json",
    )
    assert run.json()["created"] == 1
    with in_clinic(acme):
        assert not Charge.objects.filter(appointment=other.appointment).exists()


def test_fee_schedules_with_nested_fees_and_overlap_named(acme, api):
    biller = api("biller")
    with in_clinic(acme):
        code = f.service_code("97153", 15)
        from authorizations.tests import factories as af

        payer = af.payer()
    body = {
        "name": "Payer 2026",
        "payer": payer.pk,
        "effective_from": "2026-01-01",
        "fees": [
            {"service_code": "97153", "charge_per_unit": "50.00", "allowed_per_unit": "40.00"},
            {"service_code": "97153", "modifiers": "hm", "charge_per_unit": "45.00"},
        ],
    }
    created = biller.post("/api/v1/fee-schedules/", body, content_type="application/json")
    assert created.status_code == 201, created.json()
    fees = {fee["modifiers"]: fee for fee in created.json()["fees"]}
    assert fees["HM"]["charge_per_unit"] == "45.00" and fees[""]["allowed_per_unit"] == "40.00"
    overlap = biller.post(
        "/api/v1/fee-schedules/",
        {**body, "name": "Again", "fees": []},
        content_type="application/json",
    )
    assert overlap.status_code == 400 and list(overlap.json()["errors"]) == ["effective_from"]
    bad = biller.post(
        "/api/v1/fee-schedules/",
        {**body, "payer": None, "fees": [{"service_code": "00000", "charge_per_unit": "1"}]},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "fees.0.service_code" in bad.json()["errors"]
    schedule_id = created.json()["id"]
    patched = biller.patch(
        f"/api/v1/fee-schedules/{schedule_id}/",
        {"fees": [{"service_code": code.code, "charge_per_unit": "55.00"}]},
        content_type="application/json",
    )
    assert patched.status_code == 200, patched.json()
    assert [(x["modifiers"], x["charge_per_unit"]) for x in patched.json()["fees"]] == [
        ("", "55.00")
    ]
    assert biller.get("/api/v1/fee-schedules/?self_pay=true").json()["results"] == []
    desk = api("front_desk")
    assert desk.get(f"/api/v1/fee-schedules/{schedule_id}/").status_code == 200
    refused = desk.patch(
        f"/api/v1/fee-schedules/{schedule_id}/", {"name": "x"}, content_type="application/json"
    )
    assert refused.status_code == 403


def test_episodes_with_ranked_diagnoses_and_a_practitioners_own_patients(acme, api, make_user):
    biller = api("biller")
    with in_clinic(acme):
        patient = f.patient()
    created = biller.post(
        "/api/v1/episodes/",
        {"patient": patient.pk, "start_date": "2026-01-01", "diagnoses": ["f840", "Z13.41"]},
        content_type="application/json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["ranked_diagnoses"] == [
        {"rank": 1, "code": "F84.0"},
        {"rank": 2, "code": "Z13.41"},
    ]
    episode_id = created.json()["id"]
    bad = biller.patch(
        f"/api/v1/episodes/{episode_id}/",
        {"diagnoses": ["F84.0", "nope"]},
        content_type="application/json",
    )
    assert bad.status_code == 400 and list(bad.json()["errors"]) == ["diagnoses.1"]
    too_many = biller.patch(
        f"/api/v1/episodes/{episode_id}/",
        {"diagnoses": [f"F84.{i}" for i in range(13)]},
        content_type="application/json",
    )
    assert too_many.status_code == 400 and "diagnoses" in too_many.json()["errors"]
    npi = biller.patch(
        f"/api/v1/episodes/{episode_id}/",
        {"referring_provider_npi": "1234567890"},
        content_type="application/json",
    )
    assert npi.status_code == 400 and "referring_provider_npi" in npi.json()["errors"]
    # A practitioner sees the episodes of the patients they see, not the others'.
    user = make_user(acme, "practitioner")
    with in_clinic(acme):
        doctor = f.practitioner(user=user)
        visit = factories.billable_visit(practitioner=doctor)
    practitioner = ClinicClient(acme).authenticate(user)
    listed = practitioner.get("/api/v1/episodes/")
    assert [e["id"] for e in listed.json()["results"]] == [visit.episode.pk]
    assert practitioner.get(f"/api/v1/episodes/{episode_id}/").status_code == 404
    theirs = practitioner.post(
        "/api/v1/episodes/",
        {"patient": patient.pk, "start_date": "2026-01-01", "diagnoses": ["F84.0"]},
        content_type="application/json",
    )
    assert theirs.status_code == 403
    with in_clinic(acme):
        assert Episode.objects.filter(patient=patient).count() == 1


def test_a_patient_sees_their_own_charges_only(acme, api, make_user, client_for):
    user = make_user(acme, "patient")
    with in_clinic(acme):
        mine = factories.billable_visit(patient=f.patient(user=user))
        theirs = factories.billable_visit()
        from billing.charges import charges_create_for_completed

        charges_create_for_completed()
        own = Charge.objects.get(appointment=mine.appointment)
        other = Charge.objects.get(appointment=theirs.appointment)
    patient = client_for(acme, user)
    listed = patient.get("/api/v1/charges/")
    assert [c["id"] for c in listed.json()["results"]] == [own.pk]
    assert patient.get(f"/api/v1/charges/{other.pk}/").status_code == 404
    assert patient.get("/api/v1/charges/unbilled/").status_code == 403
    assert patient.post(f"/api/v1/charges/{own.pk}/void/", {"reason": "x"}).status_code == 403


def test_a_biller_of_one_clinic_sees_nothing_of_another(acme, globex, api):
    with in_clinic(globex):
        visit = factories.billable_visit()
        from billing.charges import charges_create_for_visit

        [charge] = charges_create_for_visit(appointment=visit.appointment)
        schedule = FeeSchedule.objects.get(payer=visit.payer)
        blocked = factories.billable_visit()
        blocked.episode.diagnoses.all().delete()
    acme_biller = api("biller")
    assert acme_biller.get("/api/v1/charges/").json()["results"] == []
    assert acme_biller.get(f"/api/v1/charges/{charge.pk}/").status_code == 404
    assert acme_biller.get("/api/v1/episodes/").json()["results"] == []
    assert acme_biller.get(f"/api/v1/episodes/{visit.episode.pk}/").status_code == 404
    assert acme_biller.get("/api/v1/fee-schedules/").json()["results"] == []
    assert acme_biller.get(f"/api/v1/fee-schedules/{schedule.pk}/").status_code == 404
    assert acme_biller.get("/api/v1/charges/unbilled/").json()["results"] == []
    void = acme_biller.post(
        f"/api/v1/charges/{charge.pk}/void/", {"reason": "x"}, content_type="application/json"
    )
    assert void.status_code == 404
    run = acme_biller.post(
        "/api/v1/charges/run/",
        {"appointments": [blocked.appointment.pk]},
        content_type="application/json",
    )
    assert run.json()["created"] == 0
    # Globex's own biller, signed in at Globex, sees its charge.
    globex_biller = api("biller", clinic=globex)
    assert [c["id"] for c in globex_biller.get("/api/v1/charges/").json()["results"]] == [charge.pk]
    with in_clinic(globex):
        assert Charge.objects.get(pk=charge.pk).amount == Decimal("200.00")

"""The practice API: shapes per audience, a patient's own record, bad input refused with the
field named and nothing written, and clinics that cannot see each other."""

import pytest
from django.db import IntegrityError, transaction

from clinic.errors import problem_exception_handler
from practice import selectors
from practice.models import Coverage, Location, Patient, Practitioner, ServiceCode, Specialty
from practice.validators import npi_complete
from tests.fixtures import in_clinic

from .factories import (
    CoverageFactory,
    LocationFactory,
    PatientFactory,
    PayerFactory,
    PractitionerFactory,
    SpecialtyFactory,
)
from .helpers import ANONYMOUS, problem_of

VALID_NPI = npi_complete("123456789")  # 1234567893


def _practitioner_payload(**overrides):
    return {
        "display_name": "Dr. Ada Byrne",
        "title": "MD",
        "timezone": "America/New_York",
        "npi": VALID_NPI,
        "languages": ["en", "ga"],
        "specialties": ["cardiology"],
        **overrides,
    }


# Shapes per audience ------------------------------------------------------------------------


PUBLIC_PRACTITIONER_FIELDS = {
    "id",
    "display_name",
    "title",
    "npi",
    "specialties",
    "languages",
    "bio",
    "rating_average",
    "rating_count",
    "is_verified",
    "accepts_new_patients",
    "offers_telehealth",
    "timezone",
    "locations",
}


@pytest.mark.parametrize("role", [ANONYMOUS, "patient"])
def test_public_readers_get_public_practitioner_fields_only(role, clients, directory):
    listed = clients[role].get("/api/v1/practitioners/").json()["results"]
    fetched = clients[role].get(f"/api/v1/practitioners/{directory.practitioner.pk}/").json()
    # Search results also carry what later apps register (scheduling's next_available).
    extended = {name for ext in selectors.practitioner_search_extensions() for name in ext.fields}
    assert set(listed[0]) == PUBLIC_PRACTITIONER_FIELDS | extended
    assert set(fetched) == PUBLIC_PRACTITIONER_FIELDS
    assert fetched["specialties"] == [
        {"id": directory.aba.pk, "slug": "behavior-analysis", "name": "Behavior analysis"}
    ]
    assert fetched["locations"] == [
        {"id": directory.downtown.pk, "name": "Downtown", "timezone": "America/New_York"}
    ]


@pytest.mark.parametrize("role", ["front_desk", "practitioner", "biller", "clinic_admin"])
def test_staff_get_internal_practitioner_fields(role, clients, directory):
    fetched = clients[role].get(f"/api/v1/practitioners/{directory.practitioner.pk}/").json()
    assert set(fetched) == PUBLIC_PRACTITIONER_FIELDS | {"user", "is_active", "created_at"}


def test_public_lists_of_locations_and_specialties_hide_internal_flags(clients, directory):
    location = clients[ANONYMOUS].get("/api/v1/locations/").json()["results"][0]
    assert set(location) == {"id", "name", "address", "phone", "email", "timezone"}
    specialty = clients[ANONYMOUS].get("/api/v1/specialties/").json()["results"][0]
    assert set(specialty) == {"id", "slug", "name"}
    staff = clients["front_desk"].get("/api/v1/locations/").json()["results"][0]
    assert staff["is_active"] is True


def test_inactive_practitioner_is_hidden_from_the_public_and_visible_to_staff(
    clients, directory, acme
):
    clients["clinic_admin"].post(f"/api/v1/practitioners/{directory.practitioner.pk}/deactivate/")
    url = f"/api/v1/practitioners/{directory.practitioner.pk}/"
    for role in (ANONYMOUS, "patient"):
        assert clients[role].get("/api/v1/practitioners/").json()["count"] == 0
        problem_of(clients[role].get(url), 404, "not-found")
        # asking for inactive rows is a staff privilege: ignored for the public
        assert clients[role].get("/api/v1/practitioners/?include_inactive=true").json()[
            "count"
        ] == (0)
    staff = clients["front_desk"]
    assert staff.get(url).json()["is_active"] is False
    assert staff.get("/api/v1/practitioners/").json()["count"] == 0
    assert staff.get("/api/v1/practitioners/?include_inactive=true").json()["count"] == 1
    clients["clinic_admin"].post(f"/api/v1/practitioners/{directory.practitioner.pk}/reactivate/")
    assert clients[ANONYMOUS].get(url).status_code == 200


def test_inactive_specialty_and_location_disappear_from_public_lists(clients, directory):
    admin = clients["clinic_admin"]
    admin.post(f"/api/v1/specialties/{directory.aba.pk}/deactivate/")
    admin.post(f"/api/v1/locations/{directory.downtown.pk}/deactivate/")
    specialties = clients[ANONYMOUS].get("/api/v1/specialties/").json()["results"]
    assert [s["slug"] for s in specialties] == ["cardiology"]
    locations = clients[ANONYMOUS].get("/api/v1/locations/").json()["results"]
    assert [loc["name"] for loc in locations] == ["Uptown"]
    practitioner = clients[ANONYMOUS].get(f"/api/v1/practitioners/{directory.practitioner.pk}/")
    assert practitioner.json()["specialties"] == [] and practitioner.json()["locations"] == []
    everything = admin.get("/api/v1/specialties/?include_inactive=true").json()
    assert everything["count"] == 2


# Writes: shapes and services ----------------------------------------------------------------


def test_clinic_admin_creates_a_practitioner_with_specialties_by_slug(clients, directory, acme):
    payload = _practitioner_payload(locations=[directory.downtown.pk, directory.uptown.pk])
    response = clients["clinic_admin"].post("/api/v1/practitioners/", payload, "application/json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["npi"] == VALID_NPI and body["is_active"] is True
    assert [s["slug"] for s in body["specialties"]] == ["cardiology"]
    assert [loc["name"] for loc in body["locations"]] == ["Downtown", "Uptown"]
    with in_clinic(acme):
        assert Practitioner.objects.get(pk=body["id"]).languages == ["en", "ga"]


def test_put_and_patch_a_practitioner(clients, directory, acme):
    url = f"/api/v1/practitioners/{directory.practitioner.pk}/"
    admin = clients["clinic_admin"]
    both = {"specialties": ["cardiology", "behavior-analysis"]}
    patched = admin.patch(url, both, "application/json")
    assert patched.status_code == 200
    assert [s["slug"] for s in patched.json()["specialties"]] == ["behavior-analysis", "cardiology"]
    assert patched.json()["display_name"] == "Dr. Maya Lopez"  # untouched
    put = admin.put(
        url, _practitioner_payload(display_name="Dr. Maya López", npi=""), "application/json"
    )
    assert put.status_code == 200, put.json()
    assert put.json()["display_name"] == "Dr. Maya López"
    assert put.json()["npi"] is None  # blank NPI is stored as none, not ""
    with in_clinic(acme):
        assert Practitioner.objects.get(pk=directory.practitioner.pk).npi is None


def test_patient_sees_and_changes_only_their_own_record(clients, directory, acme):
    own = clients.patient_record
    patient = clients["patient"]
    listed = patient.get("/api/v1/patients/").json()
    assert [p["id"] for p in listed["results"]] == [own.pk]
    assert patient.get(f"/api/v1/patients/{own.pk}/").status_code == 200
    changed = patient.patch(
        f"/api/v1/patients/{own.pk}/", {"phone": "+1 555 0199"}, "application/json"
    )
    assert changed.status_code == 200 and changed.json()["phone"] == "+1 555 0199"


def test_patient_editing_another_patient_is_404_and_writes_nothing(clients, directory, acme):
    other = directory.other_patient
    response = clients["patient"].patch(
        f"/api/v1/patients/{other.pk}/", {"phone": "+1 555 0666"}, "application/json"
    )
    problem_of(response, 404, "not-found")
    problem_of(
        clients["patient"].put(
            f"/api/v1/patients/{other.pk}/", {"phone": "+1 555 0666"}, "application/json"
        ),
        404,
        "not-found",
    )
    with in_clinic(acme):
        assert Patient.objects.get(pk=other.pk).phone == ""


def test_patient_cannot_change_identity_fields_of_their_own_record(clients, acme):
    own = clients.patient_record
    response = clients["patient"].patch(
        f"/api/v1/patients/{own.pk}/",
        {"first_name": "Mallory", "date_of_birth": "2000-01-01", "phone": "+1 555 0123"},
        "application/json",
    )
    body = problem_of(response, 400, "validation-error")
    assert set(body["errors"]) == {"first_name", "date_of_birth"}
    with in_clinic(acme):
        fresh = Patient.objects.get(pk=own.pk)
        assert (fresh.first_name, fresh.phone) == ("Own", "")


def test_me_patient_reads_and_updates_the_linked_record(clients, make_user, client_for, acme):
    me = clients["patient"].get("/api/v1/me/patient/")
    assert me.status_code == 200 and me.json()["id"] == clients.patient_record.pk
    changed = clients["patient"].patch(
        "/api/v1/me/patient/", {"preferred_language": "es"}, "application/json"
    )
    assert changed.status_code == 200 and changed.json()["preferred_language"] == "es"
    refused = clients["patient"].patch(
        "/api/v1/me/patient/", {"preferred_language": "xx"}, "application/json"
    )
    assert "preferred_language" in problem_of(refused, 400, "validation-error")["errors"]
    unlinked = client_for(acme, make_user(acme, "patient"))
    problem_of(unlinked.get("/api/v1/me/patient/"), 404, "no-patient-record")
    problem_of(clients[ANONYMOUS].get("/api/v1/me/patient/"), 401, "not-authenticated")


def test_patient_reads_own_coverage_but_cannot_add_any(clients, directory, acme):
    own = clients.patient_record
    with in_clinic(acme):
        CoverageFactory(patient=own, payer=directory.payer, member_id="OWN1")
    url = f"/api/v1/patients/{own.pk}/coverages/"
    listed = clients["patient"].get(url).json()
    assert [c["member_id"] for c in listed["results"]] == ["OWN1"]
    assert listed["results"][0]["payer"]["name"] == "Acme Health"
    refused = clients["patient"].post(
        url,
        {"payer": directory.payer.pk, "member_id": "X", "effective_from": "2026-01-01"},
        "application/json",
    )
    problem_of(refused, 403, "permission-denied")


def test_coverage_of_an_unknown_patient_is_404(clients):
    problem_of(clients["front_desk"].get("/api/v1/patients/999999/coverages/"), 404, "not-found")


# Bad input: 400 naming the field, nothing written --------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"npi": "1234567890"}, "npi"),  # wrong check digit
        ({"npi": "12345abcde"}, "npi"),
        ({"npi": "123456789"}, "npi"),
        ({"languages": ["xx"]}, "languages"),
        ({"languages": ["EN"]}, "languages"),
        ({"rating_average": "-1"}, "rating_average"),
        ({"rating_average": "5.5"}, "rating_average"),
        ({"rating_count": -3}, "rating_count"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"specialties": ["no-such-specialty"]}, "specialties"),
        ({"display_name": ""}, "display_name"),
    ],
)
def test_bad_practitioner_input_names_the_field_and_writes_nothing(
    overrides, field, clients, directory, acme
):
    response = clients["clinic_admin"].post(
        "/api/v1/practitioners/", _practitioner_payload(**overrides), "application/json"
    )
    body = problem_of(response, 400, "validation-error")
    assert field in {key.split(".")[0] for key in body["errors"]}, body  # "languages.0" too
    assert field in body["detail"]
    with in_clinic(acme):
        assert Practitioner.objects.count() == 1


def test_bad_practitioner_update_writes_nothing(clients, directory, acme):
    url = f"/api/v1/practitioners/{directory.practitioner.pk}/"
    response = clients["clinic_admin"].patch(
        url, {"bio": "changed", "npi": "1234567890"}, "application/json"
    )
    assert "npi" in problem_of(response, 400, "validation-error")["errors"]
    with in_clinic(acme):
        fresh = Practitioner.objects.get(pk=directory.practitioner.pk)
        assert fresh.bio == "" and fresh.npi == directory.practitioner.npi


def test_duplicate_npi_is_refused_on_the_field(clients, directory, acme):
    payload = _practitioner_payload(npi=directory.practitioner.npi)
    response = clients["clinic_admin"].post("/api/v1/practitioners/", payload, "application/json")
    assert "npi" in problem_of(response, 400, "validation-error")["errors"]


def test_linked_user_must_hold_the_practitioner_role(clients, directory, acme):
    payload = _practitioner_payload(user=clients.users["biller"].pk)
    response = clients["clinic_admin"].post("/api/v1/practitioners/", payload, "application/json")
    assert "user" in problem_of(response, 400, "validation-error")["errors"]
    with in_clinic(acme):
        assert Practitioner.objects.count() == 1


@pytest.mark.parametrize(
    ("url", "payload", "field", "model"),
    [
        ("/api/v1/locations/", {"name": "Annex", "timezone": "Nowhere/City"}, "timezone", Location),
        ("/api/v1/specialties/", {"slug": "Not A Slug", "name": "X"}, "slug", Specialty),
        ("/api/v1/specialties/", {"slug": "cardiology", "name": "Again"}, "slug", Specialty),
        ("/api/v1/service-codes/", {"code": "ABC", "label": "Bad"}, "code", ServiceCode),
        (
            "/api/v1/service-codes/",
            {"code": "97153", "label": "Timed", "unit_minutes": 0},
            "unit_minutes",
            ServiceCode,
        ),
        (
            "/api/v1/patients/",
            {
                "first_name": "A",
                "last_name": "B",
                "date_of_birth": "2001-01-01",
                "timezone": "Europe/Atlantis",
            },
            "timezone",
            Patient,
        ),
        (
            "/api/v1/patients/",
            {
                "first_name": "A",
                "last_name": "B",
                "date_of_birth": "2001-01-01",
                "timezone": "UTC",
                "preferred_language": "xx",
            },
            "preferred_language",
            Patient,
        ),
        (
            "/api/v1/patients/",
            {
                "first_name": "A",
                "last_name": "B",
                "date_of_birth": "1850-01-01",
                "timezone": "UTC",
            },
            "date_of_birth",
            Patient,
        ),
        (
            "/api/v1/patients/",
            {
                "first_name": "A",
                "last_name": "B",
                "date_of_birth": "2001-01-01",
                "timezone": "UTC",
                "country": "XX",
            },
            "country",
            Patient,
        ),
    ],
)
def test_bad_input_on_other_resources_names_the_field(
    url, payload, field, model, clients, directory, acme
):
    with in_clinic(acme):
        before = model.objects.count()
    response = clients["clinic_admin"].post(url, payload, "application/json")
    assert field in problem_of(response, 400, "validation-error")["errors"]
    with in_clinic(acme):
        assert model.objects.count() == before


def test_coverage_ending_before_it_starts_is_refused(clients, directory, acme):
    url = f"/api/v1/patients/{directory.other_patient.pk}/coverages/"
    payload = {
        "payer": directory.payer.pk,
        "member_id": "M1",
        "effective_from": "2026-03-01",
        "effective_to": "2026-02-28",
    }
    response = clients["front_desk"].post(url, payload, "application/json")
    assert "effective_to" in problem_of(response, 400, "validation-error")["errors"]
    with in_clinic(acme):
        assert not Coverage.objects.exists()
    created = clients["front_desk"].post(url, {**payload, "effective_to": None}, "application/json")
    assert created.status_code == 201
    # Changing only the end date is checked against the stored start.
    response = clients["front_desk"].patch(
        f"{url}{created.json()['id']}/", {"effective_to": "2026-01-01"}, "application/json"
    )
    assert "effective_to" in problem_of(response, 400, "validation-error")["errors"]
    with in_clinic(acme):
        assert Coverage.objects.get().effective_to is None


def test_duplicate_coverage_is_refused_on_member_id(clients, directory, acme):
    url = f"/api/v1/patients/{directory.other_patient.pk}/coverages/"
    payload = {"payer": directory.payer.pk, "member_id": "M1", "effective_from": "2026-01-01"}
    assert clients["front_desk"].post(url, payload, "application/json").status_code == 201
    again = clients["front_desk"].post(url, payload, "application/json")
    assert "member_id" in problem_of(again, 400, "validation-error")["errors"]
    with in_clinic(acme):
        assert Coverage.objects.count() == 1


def test_coverage_with_an_inactive_payer_is_refused(clients, directory, acme):
    clients["clinic_admin"].post(f"/api/v1/payers/{directory.payer.pk}/deactivate/")
    url = f"/api/v1/patients/{directory.other_patient.pk}/coverages/"
    payload = {"payer": directory.payer.pk, "member_id": "M1", "effective_from": "2026-01-01"}
    response = clients["front_desk"].post(url, payload, "application/json")
    assert "payer" in problem_of(response, 400, "validation-error")["errors"]


def test_a_constraint_lost_to_a_race_is_a_field_error_not_a_500(
    clients, directory, acme, monkeypatch
):
    """Another request inserts the same NPI between our validation and our INSERT: the
    database's unique constraint refuses it and the answer still names the field."""
    monkeypatch.setattr(Practitioner, "full_clean", lambda self, *a, **kw: None)
    monkeypatch.setattr(
        "practice.api.serializers.PractitionerInputSerializer.get_validators", lambda self: []
    )
    from rest_framework.validators import UniqueValidator

    monkeypatch.setattr(UniqueValidator, "__call__", lambda self, value, field: None)
    payload = _practitioner_payload(npi=directory.practitioner.npi)
    response = clients["clinic_admin"].post("/api/v1/practitioners/", payload, "application/json")
    body = problem_of(response, 400, "validation-error")
    assert body["errors"] == {"npi": ["Another practitioner has this NPI."]}
    with in_clinic(acme):
        assert Practitioner.objects.count() == 1


def test_an_unexpected_integrity_error_is_a_409_problem(acme):
    with in_clinic(acme):
        try:
            with transaction.atomic():
                PractitionerFactory(rating_average=-1)
        except IntegrityError as exc:
            error = exc
    response = problem_exception_handler(error, {})
    assert response.status_code == 409
    assert response.data["code"] == "constraint-violation"
    assert "practitioner_rating_0_to_5" in response.data["detail"]


# Filters and ordering -----------------------------------------------------------------------


def test_patient_filters_and_stable_ordering(clients, directory, acme):
    with in_clinic(acme):
        PatientFactory(first_name="Zed", last_name="Same", date_of_birth="1980-01-01")
        PatientFactory(first_name="Amy", last_name="Same", date_of_birth="1980-01-01")
        gone = PatientFactory(first_name="Gone", last_name="Away")
    clients["front_desk"].post(f"/api/v1/patients/{gone.pk}/deactivate/")
    desk = clients["front_desk"]
    found = desk.get("/api/v1/patients/?q=same").json()["results"]
    assert [p["first_name"] for p in found] == ["Amy", "Zed"]
    inactive = desk.get("/api/v1/patients/?is_active=false").json()["results"]
    assert [p["first_name"] for p in inactive] == ["Gone"]
    by_birth = desk.get("/api/v1/patients/?date_of_birth=1980-01-01&ordering=-date_of_birth")
    ids = [p["id"] for p in by_birth.json()["results"]]
    assert ids == sorted(ids)  # equal birth dates: the id breaks the tie


def test_payer_service_code_and_coverage_filters(clients, directory, acme):
    with in_clinic(acme):
        PayerFactory(name="Other Mutual", edi_payer_id="OTH01", claim_filing_code="MC")
        ServiceCode.objects.create(code="97153", label="Therapy", unit_minutes=15)
        ServiceCode.objects.create(code="99213", label="Follow-up visit")
        CoverageFactory(
            patient=directory.other_patient, payer=directory.payer, effective_to="2025-06-30"
        )
        current = CoverageFactory(patient=directory.other_patient, payer=directory.payer)
    biller = clients["biller"]
    assert [p["name"] for p in biller.get("/api/v1/payers/?q=mutual").json()["results"]] == [
        "Other Mutual"
    ]
    assert biller.get("/api/v1/payers/?claim_filing_code=MC").json()["count"] == 1
    timed = biller.get("/api/v1/service-codes/?timed=true").json()["results"]
    assert [(c["code"], c["is_timed"]) for c in timed] == [("97153", True)]
    per_visit = biller.get("/api/v1/service-codes/?timed=false").json()["results"]
    assert [c["code"] for c in per_visit] == ["99213"]
    url = f"/api/v1/patients/{directory.other_patient.pk}/coverages/?active_on=2026-01-15"
    assert [c["id"] for c in biller.get(url).json()["results"]] == [current.pk]


# Clinics are separate -----------------------------------------------------------------------


def test_another_clinic_cannot_list_or_fetch_practitioners_or_patients(
    clients, directory, globex, make_user, client_for, acme
):
    with in_clinic(acme):
        coverage = CoverageFactory(patient=directory.other_patient, payer=directory.payer)
    foreign = {
        "admin": client_for(globex, make_user(globex, "clinic_admin")),
        "anonymous": client_for(globex),
    }
    for client in foreign.values():
        assert client.get("/api/v1/practitioners/").json()["count"] == 0
        problem_of(
            client.get(f"/api/v1/practitioners/{directory.practitioner.pk}/"), 404, "not-found"
        )
    admin = foreign["admin"]
    assert admin.get("/api/v1/patients/").json()["count"] == 0
    assert admin.get("/api/v1/locations/").json()["count"] == 0
    for url in (
        f"/api/v1/patients/{directory.other_patient.pk}/",
        f"/api/v1/patients/{directory.other_patient.pk}/coverages/",
        f"/api/v1/patients/{directory.other_patient.pk}/coverages/{coverage.pk}/",
        f"/api/v1/payers/{directory.payer.pk}/",
    ):
        problem_of(admin.get(url), 404, "not-found")
    patched = admin.patch(
        f"/api/v1/practitioners/{directory.practitioner.pk}/", {"bio": "x"}, "application/json"
    )
    problem_of(patched, 404, "not-found")
    with in_clinic(acme):
        assert Practitioner.objects.get(pk=directory.practitioner.pk).bio == ""


def test_a_clinic_token_is_refused_by_another_clinics_practice_api(
    clients, directory, globex, client_for
):
    from tests.fixtures import ClinicClient

    token = clients["clinic_admin"].defaults["HTTP_AUTHORIZATION"]
    abroad = ClinicClient(globex).get("/api/v1/patients/", HTTP_AUTHORIZATION=token)
    problem_of(abroad, 401, "token-wrong-clinic")


def test_same_ids_in_two_clinics_stay_apart(acme, globex, make_user, client_for):
    with in_clinic(acme):
        mine = PractitionerFactory(display_name="Acme Person")
    with in_clinic(globex):
        SpecialtyFactory(slug="cardiology")
        theirs = PractitionerFactory(display_name="Globex Person", pk=mine.pk)
        LocationFactory()
    acme_view = client_for(acme).get(f"/api/v1/practitioners/{mine.pk}/").json()
    globex_view = client_for(globex).get(f"/api/v1/practitioners/{theirs.pk}/").json()
    assert (acme_view["display_name"], globex_view["display_name"]) == (
        "Acme Person",
        "Globex Person",
    )


# OpenAPI ------------------------------------------------------------------------------------


def test_openapi_documents_the_practice_api_without_delete(acme):
    from tests.fixtures import ClinicClient

    schema = ClinicClient(acme).get("/api/schema/?format=json").json()
    paths = schema["paths"]
    for resource in ("practitioners", "patients", "locations", "specialties", "payers"):
        assert f"/api/v1/{resource}/" in paths
        assert f"/api/v1/{resource}/{{id}}/deactivate/" in paths
        assert "delete" not in paths[f"/api/v1/{resource}/{{id}}/"]
    assert "/api/v1/patients/{patient_pk}/coverages/" in paths
    assert "/api/v1/service-codes/" in paths
    search = paths["/api/v1/practitioners/"]["get"]
    names = {parameter["name"] for parameter in search["parameters"]}
    assert names >= {
        "specialty",
        "language",
        "location",
        "telehealth",
        "accepting",
        "verified",
        "min_rating",
        "q",
        "page",
    }
    assert {} in search["security"]  # anonymous visitors may search

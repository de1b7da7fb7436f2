"""Role permissions per endpoint and action: who is allowed (status) and who is refused
(status and problem code), and that a refused write changes nothing."""

import itertools

import pytest

from practice.models import Coverage, Location, Patient, Payer, Practitioner, ServiceCode, Specialty
from practice.validators import npi_complete
from tests.fixtures import in_clinic

from .factories import CoverageFactory, ServiceCodeFactory
from .helpers import ANONYMOUS, ROLES_AND_ANONYMOUS, problem_of

ADMIN_ONLY = {"clinic_admin"}
FRONT_DESK_LIKE = {"front_desk", "integrator", "clinic_admin"}
EVERYONE = set(ROLES_AND_ANONYMOUS)
SIGNED_IN = EVERYONE - {ANONYMOUS}
BILLING_READERS = {"front_desk", "biller", "integrator", "clinic_admin"}

_counter = itertools.count(1)


def _n() -> int:
    return next(_counter)


# resource -> (model, list url, detail url, create payload, patch payload, readers, writers)
def _resources(directory, coverage, service_code):
    patient_id = directory.other_patient.pk
    return {
        "practitioners": (
            Practitioner,
            "/api/v1/practitioners/",
            f"/api/v1/practitioners/{directory.practitioner.pk}/",
            lambda: {
                "display_name": f"Dr. New {_n()}",
                "timezone": "America/New_York",
                "npi": npi_complete(f"{300000000 + _n():09d}"),
            },
            {"bio": "Updated."},
            EVERYONE,
            ADMIN_ONLY,
        ),
        "locations": (
            Location,
            "/api/v1/locations/",
            f"/api/v1/locations/{directory.downtown.pk}/",
            lambda: {
                "name": f"Annex {_n()}",
                "timezone": "America/New_York",
                "phone": "+1 212 555 0199",
            },
            {"phone": "+1 212 555 0100"},
            EVERYONE,
            ADMIN_ONLY,
        ),
        "specialties": (
            Specialty,
            "/api/v1/specialties/",
            f"/api/v1/specialties/{directory.cardiology.pk}/",
            lambda: {"slug": f"new-{_n()}", "name": "New"},
            {"name": "Heart medicine"},
            EVERYONE,
            ADMIN_ONLY,
        ),
        "patients": (
            Patient,
            "/api/v1/patients/",
            f"/api/v1/patients/{patient_id}/",
            lambda: {
                "first_name": "New",
                "last_name": f"Patient{_n()}",
                "date_of_birth": "2001-02-03",
                "timezone": "America/New_York",
            },
            {"phone": "+1 555 0101"},
            # A patient sees only their own record (test_api), a practitioner the patients
            # they see (this one they don't).
            SIGNED_IN - {"patient", "practitioner"},
            FRONT_DESK_LIKE,
        ),
        "coverages": (
            Coverage,
            f"/api/v1/patients/{patient_id}/coverages/",
            f"/api/v1/patients/{patient_id}/coverages/{coverage.pk}/",
            lambda: {
                "payer": directory.payer.pk,
                "member_id": f"NEW{_n()}",
                "effective_from": "2026-01-01",
            },
            {"group_number": "G-77"},
            BILLING_READERS,
            FRONT_DESK_LIKE,
        ),
        "payers": (
            Payer,
            "/api/v1/payers/",
            f"/api/v1/payers/{directory.payer.pk}/",
            lambda: {"name": "Payer", "edi_payer_id": f"P{_n():05d}"},
            {"name": "Renamed"},
            BILLING_READERS,
            ADMIN_ONLY,
        ),
        "service-codes": (
            ServiceCode,
            "/api/v1/service-codes/",
            f"/api/v1/service-codes/{service_code.pk}/",
            lambda: {"code": f"{99200 + _n() % 99:05d}", "label": "Visit"},
            {"label": "Our wording"},
            BILLING_READERS,
            ADMIN_ONLY,
        ),
    }


@pytest.fixture
def resources(acme, directory):
    with in_clinic(acme):
        coverage = CoverageFactory(patient=directory.other_patient, payer=directory.payer)
        service_code = ServiceCodeFactory(code="97153", label="Therapy session")
    return _resources(directory, coverage, service_code)


def _refusal(role: str, resource: str) -> tuple[int, str]:
    if role == ANONYMOUS:
        return 401, "not-authenticated"
    if role == "patient" and resource == "patients":
        return 404, "not-found"  # their queryset holds only their own record
    return 403, "permission-denied"


def _count(acme, model) -> int:
    with in_clinic(acme):
        return model.objects.count()


RESOURCES = [
    "practitioners",
    "locations",
    "specialties",
    "patients",
    "coverages",
    "payers",
    "service-codes",
]


@pytest.mark.parametrize("resource", RESOURCES)
def test_list_and_retrieve_by_role(resource, resources, clients):
    _, list_url, detail_url, _, _, readers, _ = resources[resource]
    for role in ROLES_AND_ANONYMOUS:
        listed = clients[role].get(list_url)
        fetched = clients[role].get(detail_url)
        if role in readers:
            assert listed.status_code == 200, (role, listed.content)
            assert fetched.status_code == 200, (role, fetched.content)
        elif role == "patient" and resource == "coverages":
            # Another patient's coverage: the patient is not theirs to see.
            problem_of(listed, 404, "not-found")
            problem_of(fetched, 404, "not-found")
        else:
            status, code = _refusal(role, resource)
            if resource == "patients" and role in ("patient", "practitioner"):
                assert listed.status_code == 200  # their own records only
                assert detail_url.split("/")[-2] not in {
                    str(row["id"]) for row in listed.json()["results"]
                }
                problem_of(fetched, 404, "not-found")
            else:
                problem_of(listed, status, code)
                problem_of(fetched, status, code)


@pytest.mark.parametrize("resource", RESOURCES)
def test_create_by_role(resource, resources, clients, acme):
    model, list_url, _, payload, _, _, writers = resources[resource]
    for role in ROLES_AND_ANONYMOUS:
        before = _count(acme, model)
        response = clients[role].post(list_url, payload(), content_type="application/json")
        if role in writers:
            assert response.status_code == 201, (role, response.content)
            assert _count(acme, model) == before + 1
        else:
            status, code = (
                (401, "not-authenticated") if role == ANONYMOUS else (403, "permission-denied")
            )
            problem_of(response, status, code)
            assert _count(acme, model) == before


@pytest.mark.parametrize("resource", RESOURCES)
def test_update_by_role(resource, resources, clients, acme):
    model, _, detail_url, _, patch, _, writers = resources[resource]
    field, value = next(iter(patch.items()))
    pk = int(detail_url.rstrip("/").rsplit("/", 1)[1])
    for role in ROLES_AND_ANONYMOUS:
        with in_clinic(acme):
            before = getattr(model.objects.get(pk=pk), field)
        response = clients[role].patch(detail_url, {field: f"{value}"}, "application/json")
        if role in writers:
            assert response.status_code == 200, (role, response.content)
            assert response.json()[field] == value
            with in_clinic(acme):
                model.objects.filter(pk=pk).update(**{field: before})
        else:
            problem_of(response, *_refusal(role, resource))
            with in_clinic(acme):
                assert getattr(model.objects.get(pk=pk), field) == before


@pytest.mark.parametrize("resource", RESOURCES)
def test_deactivate_and_reactivate_by_role(resource, resources, clients, acme):
    model, _, detail_url, _, _, _, writers = resources[resource]
    pk = int(detail_url.rstrip("/").rsplit("/", 1)[1])
    for role in ROLES_AND_ANONYMOUS:
        response = clients[role].post(f"{detail_url}deactivate/")
        if role in writers:
            assert response.status_code == 200, (role, response.content)
            assert response.json()["is_active"] is False
            again = clients[role].post(f"{detail_url}reactivate/")
            assert again.status_code == 200 and again.json()["is_active"] is True
        else:
            status, code = _refusal(role, resource)
            if role == "patient":
                status, code = 403, "permission-denied"  # no patient may deactivate
            problem_of(response, status, code)
        with in_clinic(acme):
            assert model.objects.get(pk=pk).is_active


@pytest.mark.parametrize("resource", RESOURCES)
def test_delete_is_405_and_deletes_nothing(resource, resources, clients, acme):
    model, _, detail_url, _, _, _, _ = resources[resource]
    before = _count(acme, model)
    response = clients["clinic_admin"].delete(detail_url)
    body = problem_of(response, 405, "method-not-allowed")
    assert "DELETE" not in response["Allow"]
    assert body["title"] == "Method not allowed"
    assert _count(acme, model) == before

"""The admin's autocomplete names patients as staff type: each patient it answers with is a
`read` of that patient, recorded once, by the user who typed, tied together by the request."""

import pytest

from audit.autocomplete import AUTOCOMPLETE_LABEL
from audit.models import AuditEvent
from scheduling.tests import factories as f
from tests.fixtures import in_clinic, session_client

# The patient widget on the coverage form: it searches patients (practice.PatientAdmin's
# search_fields) and answers with their names.
PATIENTS = {"app_label": "practice", "model_name": "coverage", "field_name": "patient"}


@pytest.fixture
def world(acme, make_user):
    """build_world's clinic: Robin (Dr. Alpha's patient, Alpha linked to a practitioner user)
    and Casey (Dr. Beta's); a front desk user."""
    alpha = make_user(acme, "practitioner")
    with in_clinic(acme):
        world = f.build_world(alpha)
    world.alpha_user = alpha
    world.desk = make_user(acme, "front_desk")
    return world


def _events(acme, response) -> list[AuditEvent]:
    with in_clinic(acme):
        return list(
            AuditEvent.objects.filter(request_id=response["X-Request-ID"])
            .select_related("content_type")
            .order_by("id")
        )


def _named(response) -> set[int]:
    return {int(result["id"]) for result in response.json()["results"]}


def test_the_admin_autocomplete_records_a_read_of_each_patient_it_names(acme, world):
    admin = session_client(acme, world.desk)
    answer = admin.get("/admin/autocomplete/", {**PATIENTS, "term": "Patient"})
    assert answer.status_code == 200
    named = _named(answer)
    assert named == {world.patient.pk, world.other_patient.pk}
    events = _events(acme, answer)
    assert sorted(
        (e.action, e.content_type.model, e.object_id, e.patient_id, e.object_label) for e in events
    ) == sorted(("read", "patient", str(pk), pk, AUTOCOMPLETE_LABEL) for pk in named)
    assert {(e.user_id, e.method, e.path, e.ip) for e in events} == {
        (world.desk.pk, "GET", "/admin/autocomplete/", "127.0.0.1")
    }
    # "Who saw this record" finds it by patient.
    with in_clinic(acme):
        robin = AuditEvent.objects.filter(patient_id=world.patient.pk, user=world.desk)
        assert [e.object_label for e in robin] == [AUTOCOMPLETE_LABEL]


def test_the_autocomplete_records_only_the_patients_it_answered_with(acme, world):
    # A practitioner's search reaches the patients they see only (Robin, Dr. Alpha's).
    admin = session_client(acme, world.alpha_user)
    answer = admin.get("/admin/autocomplete/", {**PATIENTS, "term": "Patient"})
    assert answer.status_code == 200
    assert _named(answer) == {world.patient.pk}
    assert [(e.action, e.patient_id) for e in _events(acme, answer)] == [("read", world.patient.pk)]
    # A search that finds nobody names nobody.
    nobody = admin.get("/admin/autocomplete/", {**PATIENTS, "term": "Nobody-by-this-name"})
    assert nobody.status_code == 200 and nobody.json()["results"] == []
    assert _events(acme, nobody) == []


def test_an_autocomplete_of_no_patient_data_or_refused_records_nothing(acme, world, make_user):
    admin = session_client(acme, make_user(acme, "clinic_admin"))
    specialties = admin.get(
        "/admin/autocomplete/",
        {"app_label": "practice", "model_name": "practitioner", "field_name": "specialties"},
    )
    assert specialties.status_code == 200 and specialties.json()["results"]
    assert _events(acme, specialties) == []
    # A field with no autocomplete is refused before any search.
    refused = admin.get(
        "/admin/autocomplete/", {**PATIENTS, "field_name": "member_id", "term": "Patient"}
    )
    assert refused.status_code == 403
    assert _events(acme, refused) == []
    # Not signed in: the admin's own sign-in page, no search.
    anonymous = session_client(acme, None).get("/admin/autocomplete/", PATIENTS)
    assert anonymous.status_code == 302
    with in_clinic(acme):
        assert not AuditEvent.objects.filter(object_label=AUTOCOMPLETE_LABEL).exists()

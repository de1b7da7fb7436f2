"""The clinic admin for the practice directory: every page renders, access follows the role
groups, nothing is deleted, and the admin validates like the services."""

import pytest
from django.forms.models import model_to_dict

from practice.models import ClinicSettings, Patient, Practitioner
from tests.fixtures import ClinicClient, in_clinic

from .factories import CoverageFactory, PatientFactory, PayerFactory

MODELS = ["location", "specialty", "practitioner", "patient", "payer", "coverage", "servicecode"]


@pytest.fixture
def admin_client_for(acme, make_user):
    def make(*roles: str) -> ClinicClient:
        user = make_user(acme, *roles)
        client = ClinicClient(acme)
        with in_clinic(acme):
            client.force_login(user)  # the session lives in the clinic's schema
        return client

    return make


@pytest.fixture
def rows(acme, directory):
    with in_clinic(acme):
        coverage = CoverageFactory(patient=directory.other_patient, payer=directory.payer)
    return {"patient": directory.other_patient, "coverage": coverage, "directory": directory}


def test_clinic_admin_opens_every_practice_page(admin_client_for, rows):
    client = admin_client_for("clinic_admin")
    directory = rows["directory"]
    objects = {
        "location": directory.downtown,
        "specialty": directory.cardiology,
        "practitioner": directory.practitioner,
        "patient": rows["patient"],
        "payer": directory.payer,
        "coverage": rows["coverage"],
    }
    for model in MODELS:
        base = f"/admin/practice/{model}/"
        assert client.get(base).status_code == 200, model
        assert client.get(base, {"q": "a"}).status_code == 200, model
        assert client.get(f"{base}add/").status_code == 200, model
        if model in objects:
            page = client.get(f"{base}{objects[model].pk}/change/")
            assert page.status_code == 200, model
            # nothing is deleted from here
            assert f"{base}{objects[model].pk}/delete/".encode() not in page.content
    patient_page = client.get(f"/admin/practice/patient/{rows['patient'].pk}/change/")
    assert b"coverages-TOTAL_FORMS" in patient_page.content  # the coverage inline
    autocomplete = client.get(
        "/admin/autocomplete/",
        {"app_label": "practice", "model_name": "practitioner", "field_name": "specialties"},
    )
    assert autocomplete.status_code == 200


def test_clinic_settings_is_a_singleton(admin_client_for, acme):
    client = admin_client_for("clinic_admin")
    listing = client.get("/admin/practice/clinicsettings/")
    assert listing.status_code == 302 and listing["Location"].endswith("/1/change/")
    assert client.get(listing["Location"]).status_code == 200
    assert client.get("/admin/practice/clinicsettings/add/").status_code == 403
    with in_clinic(acme):
        current = model_to_dict(ClinicSettings.load())
    # Every field the form shows, as stored, with one changed.
    form = {key: value for key, value in current.items() if value is not None}
    saved = client.post(
        "/admin/practice/clinicsettings/1/change/", {**form, "slot_step_minutes": 30}
    )
    assert saved.status_code == 302
    with in_clinic(acme):
        assert ClinicSettings.load().slot_step_minutes == 30
    front_desk = admin_client_for("front_desk")
    assert front_desk.get("/admin/practice/clinicsettings/").status_code == 403


@pytest.mark.parametrize(
    ("role", "can_view", "can_add"),
    [
        ("front_desk", set(MODELS), {"patient", "coverage"}),
        ("biller", set(MODELS), set()),
        ("practitioner", {"patient", "practitioner", "location", "specialty"}, set()),
        ("integrator", set(MODELS), {"patient", "coverage"}),
    ],
)  # fmt: skip
def test_admin_access_follows_the_role_groups(role, can_view, can_add, admin_client_for, rows):
    client = admin_client_for(role)
    for model in MODELS:
        listing = client.get(f"/admin/practice/{model}/").status_code
        assert listing == (200 if model in can_view or model in can_add else 403), (role, model)
        adding = client.get(f"/admin/practice/{model}/add/").status_code
        assert adding == (200 if model in can_add else 403), (role, model)


def test_front_desk_edits_patients_but_only_views_practitioners(admin_client_for, rows, acme):
    client = admin_client_for("front_desk")
    practitioner = rows["directory"].practitioner
    page = client.get(f"/admin/practice/practitioner/{practitioner.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content  # read-only
    refused = client.post(
        f"/admin/practice/practitioner/{practitioner.pk}/change/", {"display_name": "Hacked"}
    )
    assert refused.status_code == 403
    with in_clinic(acme):
        assert Practitioner.objects.get(pk=practitioner.pk).display_name == "Dr. Maya Lopez"
    added = client.post(
        "/admin/practice/patient/add/",
        {
            "first_name": "Desk",
            "last_name": "Added",
            "date_of_birth": "2010-04-05",
            "sex": "unknown",
            "preferred_language": "es",
            "timezone": "America/New_York",
            "country": "US",
            "coverages-TOTAL_FORMS": "1",
            "coverages-INITIAL_FORMS": "0",
            "coverages-0-payer": rows["directory"].payer.pk,
            "coverages-0-member_id": "DESK1",
            "coverages-0-priority": "primary",
            "coverages-0-effective_from": "2026-01-01",
            "coverages-0-copay_amount": "10",
        },
    )
    assert added.status_code == 302, added.content[:2000]
    with in_clinic(acme):
        patient = Patient.objects.get(last_name="Added")
        assert patient.coverages.get().member_id == "DESK1"


def test_admin_refuses_what_the_services_refuse(admin_client_for, rows, acme):
    client = admin_client_for("clinic_admin")
    response = client.post(
        "/admin/practice/practitioner/add/",
        {
            "display_name": "Dr. Bad Npi",
            "npi": "1234567890",
            "timezone": "Mars/Olympus",
            "languages": "en,xx",
            "rating_average": "-1",
            "rating_count": "0",
        },
    )
    assert response.status_code == 200  # the form again, with errors
    errors = response.context["adminform"].form.errors
    assert {"npi", "timezone", "languages", "rating_average"} <= set(errors)
    with in_clinic(acme):
        assert not Practitioner.objects.filter(display_name="Dr. Bad Npi").exists()


def test_deactivate_action_and_no_delete_action(admin_client_for, rows, acme):
    client = admin_client_for("front_desk")
    with in_clinic(acme):
        extra = PatientFactory()
    listing = client.get("/admin/practice/patient/")
    actions = [value for value, _ in listing.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in actions and "deactivate_selected" in actions
    done = client.post(
        "/admin/practice/patient/",
        {"action": "deactivate_selected", "_selected_action": [extra.pk]},
    )
    assert done.status_code == 302
    with in_clinic(acme):
        assert Patient.objects.get(pk=extra.pk).is_active is False
    # a payer is the clinic admin's: the front desk has no action on it
    assert client.get("/admin/practice/payer/").context["action_form"] is None


def test_patients_and_anonymous_visitors_do_not_reach_the_admin(admin_client_for, acme):
    assert ClinicClient(acme).get("/admin/practice/patient/").status_code == 302
    assert admin_client_for("patient").get("/admin/practice/patient/").status_code == 302


def test_payer_admin_search(admin_client_for, acme):
    with in_clinic(acme):
        PayerFactory(name="Findable Mutual", edi_payer_id="FIND1")
        PayerFactory(name="Other")
    page = admin_client_for("biller").get("/admin/practice/payer/", {"q": "findable"})
    assert [payer.name for payer in page.context["cl"].result_list] == ["Findable Mutual"]

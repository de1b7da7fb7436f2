"""The platform admin (public schema, its own AdminSite): clinics with their domains, created
from the template schema, suspended and reactivated; a new clinic serves its own back office."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django_tenants.utils import schema_context

from accounts.models import User
from tenants.models import Clinic, Domain
from tests.fixtures import ClinicClient, in_clinic

PASSWORD = "operator-password-1"


@pytest.fixture
def operator(committed) -> Client:
    with schema_context("public"):
        if not User.objects.filter(email="ops@platform.test").exists():
            User.objects.create_superuser("ops@platform.test", PASSWORD)
    client = Client(HTTP_HOST="localhost")
    assert client.login(email="ops@platform.test", password=PASSWORD)
    return client


def test_clinics_are_listed_with_their_domains(operator, committed_acme):
    with schema_context("public"):
        Domain.objects.create(
            domain="acme-therapy.example", tenant=committed_acme, is_primary=False
        )
    page = operator.get("/admin/tenants/clinic/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'href="//acme.localhost:' in body and "acme-therapy.example" in body
    assert "bo-nav" not in body  # the clinic back-office menu is not the platform's
    detail = operator.get(f"/admin/tenants/clinic/{committed_acme.pk}/change/")
    assert detail.status_code == 200 and b"acme-therapy.example" in detail.content


def test_a_new_clinic_is_cloned_from_the_template_and_serves_its_own_back_office(operator):
    created = operator.post(
        "/admin/tenants/clinic/add/",
        {
            "slug": "harbor",
            "name": "Harbor Physio",
            "timezone": "Europe/Lisbon",
            "admin_email": "lead@harbor.test",
            "admin_password": "harbor-admin-pass",
        },
    )
    assert created.status_code == 302, created.content[:2000]
    clinic = Clinic.objects.get(slug="harbor")
    assert clinic.domains.get().domain == "harbor.localhost"
    with in_clinic(clinic):
        codenames = set(
            Group.objects.get(name="front_desk").permissions.values_list("codename", flat=True)
        )
        assert {"book_appointment", "cancel_appointment"} <= codenames
    client = ClinicClient(clinic)
    assert client.login(email="lead@harbor.test", password="harbor-admin-pass")
    index = client.get("/admin/")
    assert index.status_code == 200 and b"Harbor Physio" in index.content
    board = client.get("/admin/scheduling/board/")
    assert board.status_code == 200 and b"Europe/Lisbon" in board.content
    assert client.get("/admin/accounts/user/add/").status_code == 200
    assert client.get("/admin/practice/clinicsettings/1/change/").status_code == 200


def test_a_bad_clinic_is_refused_on_the_form(operator):
    response = operator.post(
        "/admin/tenants/clinic/add/",
        {"slug": "admin", "name": "X", "timezone": "UTC", "admin_email": "not-an-email",
         "admin_password": "short"},
    )  # fmt: skip
    assert response.status_code == 200
    assert {"slug", "admin_email", "admin_password"} <= set(
        response.context["adminform"].form.errors
    )
    assert not Clinic.objects.filter(slug="admin").exists()


def test_suspending_closes_the_clinics_admin_and_reactivating_opens_it(
    operator, committed_acme, make_user
):
    desk = make_user(committed_acme, "front_desk", password="desk-password-123")
    client = ClinicClient(committed_acme)
    assert client.login(email=desk.email, password="desk-password-123")
    assert client.get("/admin/scheduling/board/").status_code == 200
    suspend = {"action": "suspend", "_selected_action": [committed_acme.pk]}
    operator.post("/admin/tenants/clinic/", suspend)  # asks for a reason first
    assert client.get("/admin/scheduling/board/").status_code == 200
    operator.post("/admin/tenants/clinic/", {**suspend, "post": "yes", "reason": "Unpaid bill"})
    assert client.get("/admin/scheduling/board/").status_code == 403
    assert client.get("/admin/login/").status_code == 403
    operator.post(
        "/admin/tenants/clinic/", {"action": "reactivate", "_selected_action": [committed_acme.pk]}
    )
    assert client.get("/admin/scheduling/board/").status_code == 200


def test_only_platform_superusers_operate_the_platform(committed):
    with schema_context("public"):
        User.objects.create_user("staff@platform.test", PASSWORD, is_staff=True)
    client = Client(HTTP_HOST="localhost")
    assert client.login(email="staff@platform.test", password=PASSWORD)
    response = client.get("/admin/tenants/clinic/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]

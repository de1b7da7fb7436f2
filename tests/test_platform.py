"""Platform operators (public schema) create, suspend and reactivate clinics."""

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django_tenants.utils import schema_context

from accounts.models import User
from accounts.services import user_create
from clinic.errors import problem_exception_handler
from clinic.permissions import ALL_ROLES
from tenants.models import Clinic
from tests.fixtures import ClinicClient, in_clinic

PASSWORD = "operator-password-1"


@pytest.fixture
def operator_client(committed) -> Client:
    with schema_context("public"):
        operator = User.objects.filter(email="op@platform.test").first()
        if operator is None:
            User.objects.create_superuser("op@platform.test", PASSWORD)
    client = Client(HTTP_HOST="localhost")
    assert client.login(email="op@platform.test", password=PASSWORD)
    return client


def test_platform_admin_creates_a_clinic_that_serves_its_own_admin(operator_client):
    response = operator_client.post(
        "/admin/tenants/clinic/add/",
        {
            "slug": "northwind",
            "name": "Northwind Psychology",
            "timezone": "America/Denver",
            "admin_email": "lead@northwind.test",
            "admin_password": "northwind-admin-pass",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    clinic = Clinic.objects.get(slug="northwind")
    assert clinic.schema_name == "northwind"
    client = ClinicClient(clinic)
    assert client.login(email="lead@northwind.test", password="northwind-admin-pass")
    admin_page = client.get("/admin/")
    assert admin_page.status_code == 200
    assert b"Site administration" in admin_page.content or b"Northwind" in admin_page.content


def test_platform_admin_suspends_and_reactivates(operator_client, committed_acme):
    url = "/admin/tenants/clinic/"
    operator_client.post(
        url,
        {
            "action": "suspend",
            "_selected_action": [committed_acme.pk],
            "post": "yes",
            "reason": "Unpaid bill",
        },
    )
    assert ClinicClient(committed_acme).get("/api/v1/me/").status_code == 403
    operator_client.post(url, {"action": "reactivate", "_selected_action": [committed_acme.pk]})
    assert ClinicClient(committed_acme).get("/api/v1/me/").status_code == 401


def test_platform_admin_refuses_clinic_users_and_lists_no_platform_row(operator_client):
    listing = operator_client.get("/admin/tenants/clinic/")
    assert listing.status_code == 200
    assert b'field-slug">acme<' in listing.content
    assert b'field-slug">platform<' not in listing.content
    with in_clinic(Clinic.objects.get(slug="acme")):
        user_create(email="x@acme.test", password="acme-admin-password", roles=["clinic_admin"])
    outsider = Client(HTTP_HOST="localhost")
    # acme's admin has no account in the public schema.
    assert not outsider.login(email="x@acme.test", password="acme-admin-password")
    assert outsider.get("/admin/").status_code == 302


def test_clinic_admin_of_one_clinic_cannot_sign_in_to_another(committed_acme, committed_globex):
    with in_clinic(committed_acme):
        user_create(email="boss@acme.test", password="acme-admin-password", roles=["clinic_admin"])
    assert ClinicClient(committed_acme).login(
        email="boss@acme.test", password="acme-admin-password"
    )
    assert not ClinicClient(committed_globex).login(
        email="boss@acme.test", password="acme-admin-password"
    )


def test_passwords_shorter_than_12_are_refused(acme):
    with in_clinic(acme), pytest.raises(ValidationError) as error:
        user_create(email="short@acme.test", password="elevenchars", roles=["patient"])
    assert "password" in error.value.message_dict
    with in_clinic(acme):
        assert not User.objects.filter(email="short@acme.test").exists()


def test_passwords_are_hashed_with_argon2_in_production_settings(settings):
    assert "Argon2PasswordHasher" in [h.rsplit(".", 1)[1] for h in settings.PASSWORD_HASHERS]


def test_every_role_exists_with_its_permissions_in_a_new_clinic(acme):
    from django.contrib.auth.models import Group

    with in_clinic(acme):
        groups = {g.name: g for g in Group.objects.prefetch_related("permissions")}
        assert set(ALL_ROLES) <= set(groups)
        admin_perms = {p.codename for p in groups["clinic_admin"].permissions.all()}
        assert {"add_user", "change_user", "view_user"} <= admin_perms
        assert "delete_user" not in {p.codename for p in groups["front_desk"].permissions.all()}


def test_token_endpoint_is_rate_limited_with_retry_after(acme, monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"token": "2/min"})
    client = ClinicClient(acme, REMOTE_ADDR="10.9.8.7")
    body = {"email": "nobody@acme.test", "password": "whatever-whatever"}
    statuses = [client.post("/api/v1/auth/token/", body, "application/json") for _ in range(3)]
    assert [r.status_code for r in statuses] == [401, 401, 429]
    limited = statuses[-1]
    assert limited["Content-Type"] == "application/problem+json"
    assert int(limited["Retry-After"]) > 0
    assert limited.json()["code"] == "throttled"


def test_anonymous_rate_limit_counts_per_address_in_redis(acme, monkeypatch):
    from rest_framework.throttling import AnonRateThrottle

    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": "3/hour", "user": None})
    first = ClinicClient(acme, REMOTE_ADDR="10.9.8.1")
    statuses = [first.get("/api/v1/specialties/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = first.get("/api/v1/specialties/")
    assert limited.json()["code"] == "throttled"
    assert 0 < int(limited["Retry-After"]) <= 3600
    # Another address has its own count; the counter is one Redis key with an expiry.
    assert ClinicClient(acme, REMOTE_ADDR="10.9.8.2").get("/api/v1/specialties/").status_code == 200
    from django.core.cache import cache

    client = cache._cache.get_client(write=False)
    keys = list(client.scan_iter(match=cache.make_key("throttle_anon_10.9.8.1") + ":*"))
    assert len(keys) == 1
    assert int(client.get(keys[0])) == 5 and 0 < client.ttl(keys[0]) <= 3601


def test_unexpected_error_is_a_500_problem_without_internals():
    response = problem_exception_handler(RuntimeError("secret internals"), {})
    assert response.status_code == 500
    assert response.content_type == "application/problem+json"
    assert "secret" not in str(response.data)
    assert response.data["code"] == "server-error"

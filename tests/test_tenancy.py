"""Clinics are separate: rows, hosts, suspension, provisioning, cache keys."""

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from accounts.models import User
from tenants.models import Clinic
from tenants.services import ClinicAdminSpec, clinic_create, clinic_suspend, template_sync
from tests.fixtures import ClinicClient, in_clinic


def test_rows_of_one_clinic_are_invisible_in_another(acme, globex, make_user):
    user = make_user(acme, "front_desk", email="desk@acme.test")
    with in_clinic(acme):
        assert User.objects.filter(email="desk@acme.test").exists()
    with in_clinic(globex):
        assert not User.objects.filter(email="desk@acme.test").exists()
        assert not User.objects.filter(pk=user.pk, email=user.email).exists()


def test_same_email_is_two_accounts_in_two_clinics(acme, globex, make_user):
    a = make_user(acme, "patient", email="pat@example.com", password="password-in-acme-1")
    b = make_user(globex, "patient", email="pat@example.com", password="password-in-globex-1")
    with in_clinic(acme):
        assert User.objects.get(email="pat@example.com").check_password("password-in-acme-1")
    with in_clinic(globex):
        assert not User.objects.get(pk=b.pk).check_password("password-in-acme-1")
    assert a.email == b.email


def test_api_lists_only_the_host_clinics_user(acme, globex, make_user, client_for):
    a_admin = make_user(acme, "clinic_admin")
    response = client_for(acme, a_admin).get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["clinic"] == "acme"
    assert response.json()["email"] == a_admin.email


def test_unknown_host_is_a_404_page(db):
    response = Client(HTTP_HOST="nobody.localhost").get("/")
    assert response.status_code == 404
    assert b"No clinic is served at nobody.localhost" in response.content
    assert response["Content-Type"].startswith("text/html")


def test_unknown_host_under_api_is_problem_json(db):
    response = Client(HTTP_HOST="nobody.localhost").get("/api/v1/me/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 404 and body["code"] == "unknown-clinic"


def test_base_domain_serves_the_platform_landing_page(db):
    response = Client(HTTP_HOST="localhost:8000").get("/")
    assert response.status_code == 200
    assert b"Platform administration" in response.content


def test_suspended_clinic_is_403_on_pages_and_api(acme, make_user, client_for):
    admin = make_user(acme, "clinic_admin")
    client = client_for(acme, admin)
    assert client.get("/api/v1/me/").status_code == 200
    clinic_suspend(clinic=acme)
    api = client.get("/api/v1/me/")
    assert api.status_code == 403
    assert api.json()["code"] == "clinic-suspended"
    page = client.get("/admin/")
    assert page.status_code == 403
    assert b"suspended" in page.content
    token = client.post(
        "/api/v1/auth/token/",
        {"email": admin.email, "password": "a-long-test-password"},
        content_type="application/json",
    )
    assert token.status_code == 403


def test_domain_cache_sees_suspension_saved_in_this_process(acme):
    client = ClinicClient(acme)
    assert client.get("/health/").status_code in (200, 503)  # warms the cache
    Clinic.objects.filter(pk=acme.pk).update(is_active=False)  # another process' write
    acme.is_active = False
    acme.save()  # a save here clears the per-process cache at once
    assert client.get("/api/v1/me/").status_code == 403


def test_cache_keys_are_prefixed_with_the_clinic_schema(acme, globex):
    with in_clinic(acme):
        cache.set("greeting", "hello from acme", 30)
        assert cache.make_key("greeting").startswith("acme:")
    with in_clinic(globex):
        assert cache.get("greeting") is None
        cache.set("greeting", "hello from globex", 30)
    with in_clinic(acme):
        assert cache.get("greeting") == "hello from acme"
        cache.delete("greeting")
    with in_clinic(globex):
        cache.delete("greeting")


def _schema_tables(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema])
        return {row[0] for row in cursor.fetchall()}


def test_provisioning_clones_the_template_schema(committed):
    """A marker table put only in the template appears in the new clinic: it was cloned, not
    migrated. The clinic gets its roles, its admin and its domain."""
    template_sync()
    with connection.cursor() as cursor:
        cursor.execute('CREATE TABLE "clinic_template"."clone_probe" (id int)')
    try:
        clinic = clinic_create(
            slug="initech",
            name="Initech Physio",
            timezone="Europe/Berlin",
            admin=ClinicAdminSpec(email="Boss@Initech.test", password="a-long-admin-password"),
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute('DROP TABLE "clinic_template"."clone_probe"')
    assert "clone_probe" in _schema_tables("initech")
    assert _schema_tables("initech") >= _schema_tables("acme") - {"clone_probe"}
    with schema_context("initech"):
        admin = User.objects.get(email="boss@initech.test")
        assert admin.roles == {"clinic_admin"} and admin.is_staff
        assert admin.check_password("a-long-admin-password")
    assert clinic.domains.get().domain == "initech.localhost"
    response = ClinicClient(clinic).post(
        "/api/v1/auth/token/",
        {"email": "boss@initech.test", "password": "a-long-admin-password"},
        content_type="application/json",
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("slug", "field"),
    [("Bad Slug", "slug"), ("admin", "slug"), ("acme", "slug")],
)
def test_provisioning_refuses_bad_input_and_writes_nothing(committed, slug, field):
    from django.core.exceptions import ValidationError

    before = Clinic.objects.count()
    with pytest.raises(ValidationError) as error:
        clinic_create(slug=slug, name="X", timezone="UTC")
    assert field in error.value.message_dict
    assert Clinic.objects.count() == before


def test_provisioning_refuses_unknown_timezone_and_short_password(committed):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        clinic_create(slug="newco", name="New Co", timezone="Mars/Olympus")
    assert "timezone" in error.value.message_dict
    with pytest.raises(ValidationError):
        clinic_create(
            slug="newco", name="New Co", admin=ClinicAdminSpec(email="a@b.test", password="short")
        )
    assert not Clinic.objects.filter(slug="newco").exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'newco'")
        assert cursor.fetchone() is None


def test_btree_gist_lives_in_public_not_in_a_clinic(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname IN ('btree_gist', 'pg_trgm', 'citext')"
        )
        assert {row[0] for row in cursor.fetchall()} == {"public"}

"""JWT per clinic, problem details everywhere, OpenAPI, health."""

import socket

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from accounts.models import User
from accounts.tokens import RefreshToken
from tests.fixtures import ClinicClient, in_clinic, refresh_token_for

PASSWORD = "a-long-test-password"


def _same_id_users(acme, globex):
    """A user with id 9001 in each clinic: the classic cross-tenant JWT hole."""
    users = {}
    for clinic in (acme, globex):
        with in_clinic(clinic):
            user = User(id=9001, email=f"same-id@{clinic.slug}.test", is_staff=True)
            user.set_password(PASSWORD)
            user.save()
            users[clinic.slug] = user
    return users


def test_token_obtain_and_use_on_its_own_clinic(acme, make_user):
    user = make_user(acme, "front_desk")
    client = ClinicClient(acme)
    response = client.post(
        "/api/v1/auth/token/", {"email": user.email, "password": PASSWORD}, "application/json"
    )
    assert response.status_code == 200
    access = response.json()["access"]
    me = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {access}")
    assert me.status_code == 200
    assert me.json()["roles"] == ["front_desk"]


def test_token_of_one_clinic_is_refused_by_another_with_same_user_id(acme, globex):
    users = _same_id_users(acme, globex)
    response = ClinicClient(acme).post(
        "/api/v1/auth/token/",
        {"email": users["acme"].email, "password": PASSWORD},
        "application/json",
    )
    access = response.json()["access"]
    at_home = ClinicClient(acme).get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {access}")
    assert at_home.status_code == 200 and at_home.json()["id"] == 9001
    abroad = ClinicClient(globex).get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {access}")
    assert abroad.status_code == 401
    assert abroad["Content-Type"] == "application/problem+json"
    assert abroad.json()["code"] == "token-wrong-clinic"


def test_refresh_token_of_one_clinic_is_refused_by_another(acme, globex):
    users = _same_id_users(acme, globex)
    refresh = str(refresh_token_for(acme, users["acme"]))
    abroad = ClinicClient(globex).post(
        "/api/v1/auth/token/refresh/", {"refresh": refresh}, "application/json"
    )
    assert abroad.status_code == 401
    at_home = ClinicClient(acme).post(
        "/api/v1/auth/token/refresh/", {"refresh": refresh}, "application/json"
    )
    assert at_home.status_code == 200
    assert set(at_home.json()) == {"access", "refresh"}


def test_refresh_rotates_and_blacklists_the_old_token(acme, make_user):
    user = make_user(acme, "integrator")
    refresh = str(refresh_token_for(acme, user))
    client = ClinicClient(acme)
    first = client.post("/api/v1/auth/token/refresh/", {"refresh": refresh}, "application/json")
    assert first.status_code == 200
    again = client.post("/api/v1/auth/token/refresh/", {"refresh": refresh}, "application/json")
    assert again.status_code == 401
    with in_clinic(acme):
        assert RefreshToken(first.json()["refresh"])["clinic"] == "acme"


def test_wrong_password_is_401_problem(acme, make_user):
    user = make_user(acme, "patient")
    response = ClinicClient(acme).post(
        "/api/v1/auth/token/",
        {"email": user.email, "password": "nope-nope-nope"},
        "application/json",
    )
    assert response.status_code == 401
    assert response.json()["status"] == 401


def test_malformed_json_is_a_400_problem(acme):
    response = ClinicClient(acme).post(
        "/api/v1/auth/token/", data=b'{"email": ', content_type="application/json"
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "malformed-json"
    assert set(body) >= {"type", "title", "status", "detail"}


def test_validation_error_names_each_field(acme):
    response = ClinicClient(acme).post("/api/v1/auth/token/", {}, "application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation-error"
    assert set(body["errors"]) == {"email", "password"}
    assert "email" in body["detail"]


def test_unsupported_media_type_is_a_415_problem(acme):
    response = ClinicClient(acme).post(
        "/api/v1/auth/token/", data="email=x", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported-media-type"


def test_method_not_allowed_is_a_405_problem(acme, make_user, client_for):
    client = client_for(acme, make_user(acme, "patient"))
    response = client.delete("/api/v1/me/")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 405
    assert "GET" in response["Allow"]


def test_unauthenticated_is_a_401_problem(acme):
    response = ClinicClient(acme).get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["code"] == "not-authenticated"


def test_unknown_api_path_is_a_404_problem(acme):
    response = ClinicClient(acme).get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "not-found"


def test_unknown_page_is_a_404_html_page(acme):
    response = ClinicClient(acme).get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_openapi_schema_and_docs_are_served_without_cdn(acme):
    client = ClinicClient(acme)
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/auth/token/" in paths and "/api/v1/auth/token/refresh/" in paths
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn." not in html and "unpkg" not in html
    assert (
        client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css").status_code
        == 200
    )


@pytest.mark.usefixtures("celery_worker")
def test_health_is_200_with_database_redis_and_a_worker(committed_acme):
    """Anyone gets each component's state and the number of workers, never a worker's name
    (host:pid), a timing or an error text (issue 16)."""
    response = ClinicClient(committed_acme).get("/health/")
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "status": "ok",
        "checks": {
            "database": {"status": "up"},
            "redis": {"status": "up"},
            "celery": {"status": "up", "workers": 1},
        },
    }
    assert socket.gethostname() not in response.content.decode()


@pytest.mark.usefixtures("celery_worker")
def test_health_names_the_workers_to_a_platform_operator_only(committed, make_user):
    from accounts.models import User
    from tenants.models import Clinic

    with schema_context("public"):
        User.objects.create_superuser("ops@platform.test", "operator-password-1")
    operator = Client(HTTP_HOST="localhost")
    assert operator.login(email="ops@platform.test", password="operator-password-1")
    celery = operator.get("/health/").json()["checks"]["celery"]
    assert celery["workers"] == 1 and celery["ms"] >= 0
    [name] = celery["worker_names"]
    assert socket.gethostname() in name
    # A clinic's administrator, signed in on the clinic's host, is no platform operator.
    acme = Clinic.objects.get(slug="acme")
    admin = make_user(acme, "clinic_admin")
    clinic_client = ClinicClient(acme)
    with in_clinic(acme):
        User.objects.filter(pk=admin.pk).update(is_superuser=True)
        clinic_client.force_login(User.objects.get(pk=admin.pk))
    for anyone_else in (clinic_client, Client(HTTP_HOST="localhost")):
        celery = anyone_else.get("/health/").json()["checks"]["celery"]
        assert celery == {"status": "up", "workers": 1}


def test_health_is_503_when_redis_is_down(acme, monkeypatch):
    import redis

    from clinic import views

    # A real client pointed at a port where nothing listens.
    monkeypatch.setattr(views, "_redis", redis.Redis(port=1, socket_connect_timeout=0.2))
    response = ClinicClient(acme).get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["redis"] == {"status": "down"}  # no address, port or error text
    assert body["checks"]["database"] == {"status": "up"}
    assert connection.schema_name == "acme"


def test_a_drf_request_is_freed_when_its_response_is_sent(acme, make_user, client_for, monkeypatch):
    """`ReleaseRequestMiddleware`: DRF's view, request and response contexts reference each
    other; once the response is closed what they held is freed by reference counting alone (the
    cyclic garbage collector is off here), instead of waiting for a collection."""
    import gc
    import weakref

    from clinic import middleware

    held = []
    original = middleware._release

    def release(response):
        view = response.renderer_context["view"]
        held.extend([view, weakref.ref(view.paginator), weakref.ref(view.request)])
        original(response)

    monkeypatch.setattr(middleware, "_release", release)
    client = client_for(acme, make_user(acme, "front_desk"))
    gc.collect()
    gc.disable()
    try:
        response = client.get("/api/v1/practitioners/")
        assert response.status_code == 200 and response.json()["count"] >= 0
        assert response.renderer_context == {}
        view, paginator, request = held
        assert vars(view) == {}
        assert paginator() is None  # only the view held it
        assert request() is None or vars(request()) == {}
    finally:
        gc.enable()


def test_a_list_page_without_filter_parameters_builds_no_filter_form(
    acme, make_user, client_for, monkeypatch
):
    """The filter backend is skipped when no filter is named (the filterset would return the
    rows as they are); a named filter still filters, and a bad value is still the field's 400."""
    from django_filters.filterset import BaseFilterSet

    from practice import services as practice

    with in_clinic(acme):
        practice.payer_create(name="Aetna East", edi_payer_id="60054")
        practice.payer_create(name="Cigna West", edi_payer_id="62308")
    built: list[type] = []
    real_init = BaseFilterSet.__init__

    def counting_init(self, *args, **kwargs):
        built.append(type(self))
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(BaseFilterSet, "__init__", counting_init)
    client = client_for(acme, make_user(acme, "clinic_admin"))
    everything = client.get("/api/v1/payers/?page=1&ordering=name")
    assert everything.status_code == 200 and built == []
    names = [row["name"] for row in everything.json()["results"]]
    assert {"Aetna East", "Cigna West"} <= set(names) and names == sorted(names)
    found = client.get("/api/v1/payers/?q=cigna")
    assert found.status_code == 200 and len(built) == 1
    assert [row["name"] for row in found.json()["results"]] == ["Cigna West"]
    refused = client.get("/api/v1/patients/?date_of_birth=yesterday")
    assert refused.status_code == 400, refused.content
    assert "date_of_birth" in str(refused.json())

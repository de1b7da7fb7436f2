"""Input that can never 500: request bodies too large or nested too deep are refused with a
problem, on the anonymous token endpoint and on an authenticated write."""

import pytest
from django.test import override_settings

from accounts.models import User
from tests.fixtures import ClinicClient, in_clinic

DEEP = b"[" * 100_000 + b"]" * 100_000  # past Python's recursion limit
NESTED_33 = b'{"name": ' + b"[" * 33 + b"]" * 33 + b"}"
NESTED_32 = b'{"email": "a@b.test", "password": "x", "x": ' + b"[" * 31 + b"]" * 31 + b"}"


@pytest.fixture
def endpoints(acme, make_user, client_for):
    admin = client_for(acme, make_user(acme, "clinic_admin"))
    return [
        (ClinicClient(acme), "/api/v1/auth/token/"),
        (admin, "/api/v1/practitioners/"),
    ]


@pytest.mark.parametrize("body", [DEEP, NESTED_33], ids=["recursion", "depth-33"])
def test_json_nested_too_deep_is_a_400_problem_naming_the_body(acme, endpoints, body):
    for client, path in endpoints:
        response = client.post(path, data=body, content_type="application/json")
        assert response.status_code == 400, path
        assert response["Content-Type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "malformed-json"
        assert problem["detail"].startswith("The request body")
        assert "nests deeper than 32 levels" in problem["detail"]
    with in_clinic(acme):
        assert not User.objects.filter(email="a@b.test").exists()


def test_json_nested_to_the_limit_is_parsed(acme):
    response = ClinicClient(acme).post(
        "/api/v1/auth/token/", data=NESTED_32, content_type="application/json"
    )
    assert response.status_code == 401  # parsed; the credentials are wrong


def test_body_over_the_upload_limit_is_a_413_problem(acme, endpoints):
    body = b'{"email": "' + b"a" * 3_000_000 + b'"}'
    for client, path in endpoints:
        response = client.post(path, data=body, content_type="application/json")
        assert response.status_code == 413, path
        assert response["Content-Type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "body-too-large"
        assert problem["status"] == 413
        assert "request body" in problem["detail"]


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_body_limit_follows_the_setting(acme):
    response = ClinicClient(acme).post(
        "/api/v1/auth/token/",
        data=b'{"email": "' + b"a" * 2000 + b'"}',
        content_type="application/json",
    )
    assert response.status_code == 413
    assert "1000 bytes" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/calendar/%00.ics", "/calendar/a%2Fb.ics", "/calendar/x y.ics"])
def test_calendar_feed_with_a_malformed_token_is_a_404(acme, path):
    response = ClinicClient(acme).get(path)
    assert response.status_code == 404

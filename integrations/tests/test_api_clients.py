"""API clients: created by the clinic admin, exchanged for a clinic-bound token by the OAuth 2.0
client-credentials grant, held to their scopes through the roles' permission path, revoked at
once, rotated with an overlap, attributed in the audit trail, never stored or logged in clear."""

import base64
import logging
from datetime import timedelta
from urllib.parse import urlencode

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from clinic.permissions import (
    API_SCOPES,
    CLINIC_ADMIN,
    INTEGRATOR,
    installed_grants,
    scope_permissions,
)
from integrations.models import ApiClient
from practice.tests.factories import PatientFactory
from tests.fixtures import ClinicClient, in_clinic

TOKEN_URL = "/api/v1/oauth/token/"


@pytest.fixture
def admin_api(acme, make_user, client_for):
    return client_for(acme, make_user(acme, CLINIC_ADMIN))


def create_client(admin_api, *scopes, **extra) -> dict:
    response = admin_api.post(
        "/api/v1/api-clients/",
        {"name": "Acme EHR", "scopes": list(scopes), **extra},
        content_type="application/json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def token_post(client: ClinicClient, data: dict, **headers):
    """A form-encoded POST to the token endpoint (RFC 6749 §4.4.2)."""
    return client.post(
        TOKEN_URL, urlencode(data), content_type="application/x-www-form-urlencoded", **headers
    )


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def token_for(clinic, created: dict, **form) -> dict:
    response = token_post(
        ClinicClient(clinic),
        {"grant_type": "client_credentials", **form},
        HTTP_AUTHORIZATION=basic(created["client_id"], created["client_secret"]),
    )
    assert response.status_code == 200, response.json()
    return response.json()


def bearer(clinic, access_token: str) -> ClinicClient:
    return ClinicClient(clinic, HTTP_AUTHORIZATION=f"Bearer {access_token}")


def test_a_client_gets_a_bearer_token_and_holds_only_its_scopes(acme, admin_api):
    created = create_client(admin_api, "scheduling:read")
    assert created["client_id"].startswith("cl_") and len(created["client_secret"]) >= 40
    shown = admin_api.get(f"/api/v1/api-clients/{created['id']}/").json()
    assert "client_secret" not in shown and shown["scopes"] == ["scheduling:read"]

    response = token_post(
        ClinicClient(acme),
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic(created["client_id"], created["client_secret"]),
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["scope"] == "scheduling:read"

    api = bearer(acme, body["access_token"])
    assert api.get("/api/v1/appointments/").status_code == 200
    booking = api.post("/api/v1/appointments/", {}, content_type="application/json")
    assert booking.status_code == 403  # no scheduling:write
    assert api.get("/api/v1/patients/").status_code == 403  # no practice scope
    assert api.get("/api/v1/api-clients/").status_code == 403  # clinic admin only
    assert api.get("/api/v1/me/").status_code == 403  # a client has no account of its own
    assert api.get("/api/v1/me/export/").status_code == 403  # nor patient self-service


def test_body_credentials_work_and_errors_follow_rfc_6749(acme, admin_api):
    created = create_client(admin_api, "scheduling:read", "practice:read")
    anonymous = ClinicClient(acme)
    ok = token_post(
        anonymous,
        {
            "grant_type": "client_credentials",
            "client_id": created["client_id"],
            "client_secret": created["client_secret"],
            "scope": "practice:read",
        },
    )
    assert ok.status_code == 200 and ok.json()["scope"] == "practice:read"

    def error(response, status: int, code: str, field: str | None = None):
        assert response.status_code == status, response.json()
        body = response.json()
        assert body["error"] == code and body["status"] == status and body["error_description"]
        assert response["Content-Type"] == "application/problem+json"
        if field:
            assert field in body["errors"]
        return response

    auth = basic(created["client_id"], created["client_secret"])
    wrong = basic(created["client_id"], "not-the-secret")
    unknown = basic("cl_nobody", created["client_secret"])
    for header in (wrong, unknown):
        refused = token_post(
            anonymous, {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=header
        )
        error(refused, 401, "invalid_client")
        assert refused["WWW-Authenticate"].startswith("Basic")
    error(token_post(anonymous, {"grant_type": "client_credentials"}), 401, "invalid_client")
    error(
        token_post(anonymous, {"grant_type": "password"}, HTTP_AUTHORIZATION=auth),
        400,
        "unsupported_grant_type",
        "grant_type",
    )
    error(token_post(anonymous, {}, HTTP_AUTHORIZATION=auth), 400, "invalid_request")
    error(
        token_post(
            anonymous,
            {"grant_type": "client_credentials", "scope": "billing:read"},
            HTTP_AUTHORIZATION=auth,
        ),
        400,
        "invalid_scope",
        "scope",
    )
    both = token_post(
        anonymous,
        {"grant_type": "client_credentials", "client_id": created["client_id"]},
        HTTP_AUTHORIZATION=auth,
    )
    error(both, 400, "invalid_request")
    as_json = anonymous.post(
        TOKEN_URL,
        {"grant_type": "client_credentials"},
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )
    assert as_json.status_code == 415


def test_a_revoked_client_is_refused_on_its_next_request(acme, admin_api):
    created = create_client(admin_api, "scheduling:read")
    api = bearer(acme, token_for(acme, created)["access_token"])
    assert api.get("/api/v1/appointments/").status_code == 200

    revoked = admin_api.post(
        f"/api/v1/api-clients/{created['id']}/revoke/", {}, content_type="application/json"
    )
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]

    refused = api.get("/api/v1/appointments/")
    assert refused.status_code == 401 and refused.json()["code"] == "client-revoked"
    again = token_post(
        ClinicClient(acme),
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic(created["client_id"], created["client_secret"]),
    )
    assert again.status_code == 401 and again.json()["error"] == "invalid_client"
    rotate = admin_api.post(
        f"/api/v1/api-clients/{created['id']}/rotate-secret/", {}, content_type="application/json"
    )
    assert rotate.status_code == 409


def test_narrowed_scopes_bind_tokens_already_out(acme, admin_api):
    created = create_client(admin_api, "scheduling:read", "practice:read")
    api = bearer(acme, token_for(acme, created)["access_token"])
    assert api.get("/api/v1/patients/").status_code == 200
    changed = admin_api.patch(
        f"/api/v1/api-clients/{created['id']}/",
        {"scopes": ["scheduling:read"]},
        content_type="application/json",
    )
    assert changed.status_code == 200
    assert api.get("/api/v1/patients/").status_code == 403
    assert api.get("/api/v1/appointments/").status_code == 200


def test_a_token_of_one_clinic_is_refused_on_another(acme, globex, admin_api):
    created = create_client(admin_api, "scheduling:read")
    token = token_for(acme, created)["access_token"]
    refused = bearer(globex, token).get("/api/v1/appointments/")
    assert refused.status_code == 401 and refused.json()["code"] == "token-wrong-clinic"
    # and its credentials mean nothing at the other clinic's token endpoint
    other = token_post(
        ClinicClient(globex),
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic(created["client_id"], created["client_secret"]),
    )
    assert other.status_code == 401


def test_a_rotated_secret_works_until_its_overlap_ends(acme, admin_api):
    created = create_client(admin_api, "scheduling:read")
    # the run's clock, held still (the admin's token was issued on it: not before)
    with time_machine.travel(timezone.now(), tick=False):
        until = timezone.now() + timedelta(hours=2)
        rotated = admin_api.post(
            f"/api/v1/api-clients/{created['id']}/rotate-secret/",
            {"previous_secret_valid_until": until.isoformat()},
            content_type="application/json",
        )
        assert rotated.status_code == 200
        new = {**created, "client_secret": rotated.json()["client_secret"]}
        assert new["client_secret"] != created["client_secret"]
        token_for(acme, created)  # the old one, within the overlap
        token_for(acme, new)
        past = admin_api.post(
            f"/api/v1/api-clients/{created['id']}/rotate-secret/",
            {"previous_secret_valid_until": (timezone.now() - timedelta(hours=1)).isoformat()},
            content_type="application/json",
        )
        assert past.status_code == 400
        assert "previous_secret_valid_until" in past.json()["errors"]
    with time_machine.travel(until + timedelta(seconds=1), tick=False):
        old = token_post(
            ClinicClient(acme),
            {"grant_type": "client_credentials"},
            HTTP_AUTHORIZATION=basic(created["client_id"], created["client_secret"]),
        )
        assert old.status_code == 401
        token_for(acme, new)


def test_bad_scopes_are_refused_naming_the_field(admin_api):
    for scopes in ([], ["scheduling:admin"], "scheduling:read"):
        response = admin_api.post(
            "/api/v1/api-clients/",
            {"name": "x", "scopes": scopes},
            content_type="application/json",
        )
        assert response.status_code == 400
        assert any(key.split(".")[0] == "scopes" for key in response.json()["errors"])


def test_a_clients_reads_of_patient_data_are_attributed_to_it_in_the_audit_trail(acme, admin_api):
    created = create_client(admin_api, "practice:read")
    with in_clinic(acme):
        patient = PatientFactory()
    api = bearer(acme, token_for(acme, created)["access_token"])
    assert api.get(f"/api/v1/patients/{patient.pk}/").status_code == 200
    with in_clinic(acme):
        client = ApiClient.objects.get(pk=created["id"])
        event = AuditEvent.objects.filter(patient_id=patient.pk, action="read").latest("id")
    assert event.client == created["client_id"]
    assert event.user_id == client.user_id


def test_secrets_are_never_stored_nor_logged_in_clear(acme, admin_api, caplog):
    caplog.set_level(logging.DEBUG)
    created = create_client(admin_api, "scheduling:read")
    secret = created["client_secret"]
    rotated = admin_api.post(
        f"/api/v1/api-clients/{created['id']}/rotate-secret/", {}, content_type="application/json"
    ).json()
    token_for(acme, {**created, "client_secret": rotated["client_secret"]})
    token_for(acme, created)  # the previous secret, within its overlap

    assert secret not in caplog.text and rotated["client_secret"] not in caplog.text
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN (%s, 'public') AND table_type = 'BASE TABLE'",
            [acme.schema_name],
        )
        tables = cursor.fetchall()
        assert len(tables) > 20
        found = []
        for schema, table in tables:
            cursor.execute(
                f'SELECT count(*) FROM "{schema}"."{table}" t '  # noqa: S608 (catalog names)
                "WHERE t::text LIKE %s OR t::text LIKE %s",
                [f"%{secret}%", f"%{rotated['client_secret']}%"],
            )
            if cursor.fetchone()[0]:
                found.append(f"{schema}.{table}")
    assert found == []
    with in_clinic(acme):
        stored = ApiClient.objects.get(pk=created["id"])
    assert stored.secret_hash.startswith(("argon2", "pbkdf2", "md5"))


def test_scopes_are_the_integrators_grants_per_area():
    integrator = installed_grants()[INTEGRATOR]
    held = scope_permissions(set(API_SCOPES))
    integrator_permissions = {
        f"{label.split('.')[0]}.{action}_{label.split('.')[1]}"
        for label, grant in integrator.items()
        for action in grant.actions
    }
    assert held == integrator_permissions  # every scope: exactly the integrator
    read = scope_permissions({"scheduling:read"})
    assert read and all(p.startswith("scheduling.view_") for p in read)
    write = scope_permissions({"scheduling:write"})
    assert "scheduling.book_appointment" in write and read < write
    assert not any(p.startswith("integrations.") for p in held)

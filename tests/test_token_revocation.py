"""A new password, a deactivation, a change of roles or "sign out everywhere" revokes every
access and refresh token of the user (rotated successors included) and ends their sessions,
on the next request; other users keep theirs (issue 16)."""

import base64
import itertools
import json

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.auth import SCHEMA_CLAIM, VERSION_CLAIM, ClinicTokenObtainPairSerializer
from accounts.models import User
from accounts.services import user_sign_out_everywhere
from accounts.tokens import RefreshToken
from clinic.asgi import application
from clinic.permissions import BILLER, CLINIC_ADMIN, FRONT_DESK, PATIENT
from practice.tests.helpers import problem_of
from tests.fixtures import ClinicClient, host_of, in_clinic, run_async, session_client

PASSWORD = "a-long-test-password"
NEW_PASSWORD = "another-long-pass-phrase-7"


_addresses = itertools.count(1)


class Holder:
    """Everything a user may hold: the first pair of tokens, the pair a refresh rotated it
    into, and a browser session. Each holder signs in from an address of its own (the token
    endpoints' limit counts per address)."""

    def __init__(self, clinic, user: User, password: str = PASSWORD):
        self.clinic, self.user = clinic, user
        self.address = f"10.16.{next(_addresses) // 250}.{next(_addresses) % 250 + 1}"
        client = self.client()
        first = client.post(
            "/api/v1/auth/token/", {"email": user.email, "password": password}, "application/json"
        ).json()
        rotated = client.post(
            "/api/v1/auth/token/refresh/", {"refresh": first["refresh"]}, "application/json"
        ).json()
        self.accesses = [first["access"], rotated["access"]]
        self.refresh = rotated["refresh"]  # the first was blacklisted by the rotation
        self.session = session_client(clinic, user)

    def client(self) -> ClinicClient:
        return ClinicClient(self.clinic, REMOTE_ADDR=self.address)

    def me(self, access: str):
        return self.client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {access}")

    def refreshed(self):
        return self.client().post(
            "/api/v1/auth/token/refresh/", {"refresh": self.refresh}, "application/json"
        )

    def session_alive(self) -> bool:
        return self.session.get("/api/v1/me/").status_code == 200

    def assert_works(self) -> None:
        assert all(self.me(access).status_code == 200 for access in self.accesses)
        assert self.session_alive()

    def assert_revoked(self) -> None:
        for access in self.accesses:
            problem_of(self.me(access), 401, "token-revoked")
        problem_of(self.refreshed(), 401, "token-revoked")
        assert not self.session_alive()


def _set_password(clinic, user, admin_client):
    with in_clinic(clinic):
        user.set_password(NEW_PASSWORD)
        user.save()


def _admin_password_form(clinic, user, admin_client):
    response = admin_client.post(
        f"/admin/accounts/user/{user.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content[:2000]


def _portal_reset(clinic, user, admin_client):
    with in_clinic(clinic):
        uid = urlsafe_base64_encode(force_bytes(user.pk))
        token = default_token_generator.make_token(user)
    browser = ClinicClient(clinic)
    form = browser.get(f"/password-reset/{uid}/{token}/", follow=True)
    assert form.status_code == 200
    done = browser.post(
        form.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert done.status_code == 302 and "/password-reset/done/" in done["Location"]


def _deactivate_then_reopen(clinic, user, admin_client):
    with in_clinic(clinic):
        user.is_active = False
        user.save()
        user.is_active = True  # opened again: the old tokens stay dead
        user.save()


def _role_added(clinic, user, admin_client):
    with in_clinic(clinic):
        user.groups.add(Group.objects.get(name=BILLER))


def _role_removed_from_the_group(clinic, user, admin_client):
    with in_clinic(clinic):
        Group.objects.get(name=FRONT_DESK).user_set.remove(user)


def _group_cleared(clinic, user, admin_client):
    with in_clinic(clinic):
        Group.objects.get(name=FRONT_DESK).user_set.clear()


def _roles_in_admin(clinic, user, admin_client):
    with in_clinic(clinic):
        biller = Group.objects.get(name=BILLER).pk
    response = admin_client.get(f"/admin/accounts/user/{user.pk}/change/")
    form = response.context["adminform"].form
    data = {
        name: form.initial.get(name) or ""
        for name in ("email", "full_name", "is_active", "date_joined_0", "date_joined_1")
    }
    data.update(email=user.email, is_active="on", groups=[biller])
    with in_clinic(clinic):
        joined = User.objects.get(pk=user.pk).date_joined
    data["date_joined_0"], data["date_joined_1"] = f"{joined:%Y-%m-%d}", f"{joined:%H:%M:%S}"
    saved = admin_client.post(f"/admin/accounts/user/{user.pk}/change/", data)
    assert saved.status_code == 302, saved.context["adminform"].form.errors


def _sign_out_everywhere_api(clinic, user, admin_client):
    holder_token = ClinicTokenObtainPairSerializer.get_token
    with in_clinic(clinic):
        access = str(holder_token(User.objects.get(pk=user.pk)).access_token)
    response = ClinicClient(clinic).post(
        "/api/v1/auth/sign-out-everywhere/", HTTP_AUTHORIZATION=f"Bearer {access}"
    )
    assert response.status_code == 204
    problem_of(
        ClinicClient(clinic).get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {access}"),
        401,
        "token-revoked",
    )


def _sign_out_everywhere_admin_link(clinic, user, admin_client):
    own = session_client(clinic, user)
    assert b"Sign out everywhere" in own.get("/admin/").content
    response = own.post("/admin/account/sign-out-everywhere/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert own.get("/admin/").status_code == 302  # this session too


def _admin_action(clinic, user, admin_client):
    response = admin_client.post(
        "/admin/accounts/user/",
        {"action": "sign_out_everywhere", "_selected_action": [user.pk]},
    )
    assert response.status_code == 302


TRIGGERS = {
    "set_password then save": _set_password,
    "admin password form": _admin_password_form,
    "portal password reset": _portal_reset,
    "deactivation": _deactivate_then_reopen,
    "role added": _role_added,
    "role removed from the group's side": _role_removed_from_the_group,
    "the group cleared": _group_cleared,
    "roles changed in the admin": _roles_in_admin,
    "sign out everywhere (API)": _sign_out_everywhere_api,
    "sign out everywhere (admin link)": _sign_out_everywhere_admin_link,
    "sign out everywhere (admin action on users)": _admin_action,
}


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_each_trigger_revokes_every_token_and_session_of_that_user_only(trigger, acme, make_user):
    user = make_user(acme, FRONT_DESK)
    bystander = make_user(acme, BILLER)  # not in the group the triggers change
    admin = make_user(acme, CLINIC_ADMIN)
    holder, other = Holder(acme, user), Holder(acme, bystander)
    holder.assert_works()
    admin_client = session_client(acme, admin)

    TRIGGERS[trigger](acme, user, admin_client)

    holder.assert_revoked()
    other.assert_works()
    assert admin_client.get("/admin/").status_code == 200
    # Signing in again gives tokens that work, and refresh into the current version.
    with in_clinic(acme):
        now = User.objects.get(pk=user.pk)
        fresh = Holder(acme, now, PASSWORD if now.check_password(PASSWORD) else NEW_PASSWORD)
        version = now.token_version
    fresh.assert_works()
    refreshed = fresh.refreshed()
    assert refreshed.status_code == 200
    assert RefreshToken(refreshed.json()["refresh"], verify=False)[VERSION_CLAIM] == version


def test_changing_ones_own_password_keeps_that_session_and_ends_the_others(acme, make_user):
    user = make_user(acme, FRONT_DESK)
    here, elsewhere = session_client(acme, user), session_client(acme, user)
    holder = Holder(acme, user)
    changed = here.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert changed.status_code == 302, changed.content[:1000]
    assert here.get("/admin/").status_code == 200
    assert elsewhere.get("/admin/").status_code == 302
    for access in holder.accesses:
        problem_of(holder.me(access), 401, "token-revoked")


def test_portal_sign_out_everywhere_button(acme, make_user):
    from practice.services import patient_register

    with in_clinic(acme):
        patient = patient_register(
            email="robin@acme.test",
            password=PASSWORD,
            first_name="Robin",
            last_name="Patient",
            date_of_birth="1990-01-01",
            timezone="America/New_York",
        )
        user = User.objects.get(pk=patient.user_id)
    holder = Holder(acme, user)
    page = holder.session.get("/appointments/")
    assert page.status_code == 200 and b"Sign out everywhere" in page.content
    response = holder.session.post("/signout/everywhere/")
    assert response.status_code == 302 and response["Location"] == "/signin/"
    for access in holder.accesses:
        problem_of(holder.me(access), 401, "token-revoked")
    problem_of(holder.refreshed(), 401, "token-revoked")
    assert holder.session.get("/appointments/").status_code == 302  # sent to sign in


def _token_without_version(clinic, user) -> RefreshToken:
    with in_clinic(clinic):
        token = RefreshToken.for_user(user)
    token[SCHEMA_CLAIM] = clinic.schema_name
    return token


@pytest.mark.parametrize("claim", ["absent", 7, "0", None, True])
def test_a_token_without_the_current_version_is_refused(claim, acme, make_user):
    user = make_user(acme, FRONT_DESK)
    token = _token_without_version(acme, user)
    if claim != "absent":
        token[VERSION_CLAIM] = claim
    client = ClinicClient(acme, REMOTE_ADDR="10.17.0.1")
    problem_of(
        client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {token.access_token}"),
        401,
        "token-revoked",
    )
    problem_of(
        client.post("/api/v1/auth/token/refresh/", {"refresh": str(token)}, "application/json"),
        401,
        "token-revoked",
    )


def test_a_forged_version_is_refused(acme, make_user):
    """Raising the version in a token breaks its signature: the token is simply invalid."""
    user = make_user(acme, FRONT_DESK)
    with in_clinic(acme):
        old = str(ClinicTokenObtainPairSerializer.get_token(user).access_token)
        user_sign_out_everywhere(user=user)
    header, payload, signature = old.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims[VERSION_CLAIM] = user.token_version
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    response = ClinicClient(acme).get(
        "/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {header}.{forged_payload}.{signature}"
    )
    assert response.status_code == 401
    assert response.json()["code"] != "token-revoked"  # refused before its claims are read


def test_the_version_costs_no_query(acme, make_user):
    user = make_user(acme, FRONT_DESK)
    client = ClinicClient(acme).authenticate(user)
    client.get("/api/v1/me/")  # warm: the clinic's host lookup
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/v1/me/").status_code == 200
    reads = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith("SET ")]
    assert len(reads) == 1 and "token_version" in reads[0]  # with the user and their roles


def test_the_sign_out_everywhere_endpoint_is_in_the_schema(acme):
    schema = ClinicClient(acme).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/auth/sign-out-everywhere/"]["post"]
    assert set(operation["responses"]) >= {"204"}
    assert ClinicClient(acme).post("/api/v1/auth/sign-out-everywhere/").status_code == 401


def test_patients_are_revoked_like_staff(acme, make_user):
    user = make_user(acme, PATIENT)
    holder = Holder(acme, user)
    with in_clinic(acme):
        user_sign_out_everywhere(user=user)
    for access in holder.accesses:
        problem_of(holder.me(access), 401, "token-revoked")


async def _board_socket(clinic, token: str) -> int | None:
    communicator = WebsocketCommunicator(
        application, f"/ws/schedule/?token={token}", headers=[(b"host", host_of(clinic).encode())]
    )
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    first = await communicator.receive_output(timeout=10)
    await communicator.disconnect()
    return first.get("code")  # None: a frame (ready); else the close code


def test_a_revoked_user_cannot_open_a_socket(committed_acme, make_user):
    acme = committed_acme
    user = make_user(acme, FRONT_DESK)
    with in_clinic(acme):
        token = str(ClinicTokenObtainPairSerializer.get_token(user).access_token)
    assert run_async(_board_socket(acme, token)) is None  # ready
    with in_clinic(acme):
        user_sign_out_everywhere(user=user)
    assert run_async(_board_socket(acme, token)) == 4401

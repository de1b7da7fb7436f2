"""Sign-in defence on every door (accounts.lockout, clinic.client_address): the API's token
and refresh endpoints, the clinic's and the platform's admin sign-in, the portal's sign-in,
sign-up and password reset.

Every attack here rotates `X-Forwarded-For` on each attempt, as the attack run did: only a
trusted proxy's header counts. Each test signs in from its own address, so the per-address
counters in Redis (which no transaction rolls back) never add up across tests.
"""

import itertools
import json
from datetime import timedelta

import httpx
import pytest
import time_machine
from axes.models import AccessAttempt
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import Client, RequestFactory
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.models import User
from clinic.api import CounterRateThrottle
from clinic.client_address import client_address
from practice.services import consent_texts_current
from tests.fixtures import ClinicClient, in_clinic, refresh_token_for, session_client

PASSWORD = "a-long-test-password"
TOKEN = "/api/v1/auth/token/"
_addresses = (f"198.51.{n // 250}.{n % 250 + 1}" for n in itertools.count())
_forged = (f"203.0.113.{n % 250 + 1}" for n in itertools.count())


def new_address() -> str:
    return next(_addresses)


def forged() -> dict:
    """A new `X-Forwarded-For` for each attempt, as an attacker would send."""
    return {"HTTP_X_FORWARDED_FOR": next(_forged)}


@pytest.fixture
def rates(monkeypatch):
    """rates(scope=rate, ...): the rate limits of this test (restored after it)."""

    def set_rates(**scoped: str) -> None:
        for scope, rate in scoped.items():
            monkeypatch.setitem(CounterRateThrottle.THROTTLE_RATES, scope, rate)

    return set_rates


def api_sign_in(client: ClinicClient, email: str, password: str):
    return client.post(
        TOKEN, {"email": email, "password": password}, "application/json", **forged()
    )


def page_sign_in(client: ClinicClient, path: str, email: str, password: str):
    return client.post(path, {"username": email, "password": password}, **forged())


# --- The client's address -----------------------------------------------------------------------


def _request(peer: str, forwarded: str | None = None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR=peer, **extra)


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(settings):
    settings.TRUSTED_PROXIES = []
    assert client_address(_request("192.0.2.10", "203.0.113.5")) == "192.0.2.10"
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_address(_request("192.0.2.10", "203.0.113.5")) == "192.0.2.10"


def test_a_trusted_proxy_names_the_client_right_of_anything_the_client_wrote(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "192.0.2.1"]
    # the client wrote "1.1.1.1"; our proxies appended what they saw: the client, then 10.0.0.7
    assert client_address(_request("10.0.0.2", "1.1.1.1, 203.0.113.5, 10.0.0.7")) == ("203.0.113.5")
    assert client_address(_request("192.0.2.1", "2001:DB8:0::1")) == "2001:db8::1"
    # a header with nothing but our proxies, or none: the left-most proxy, or the peer
    assert client_address(_request("10.0.0.2", "10.0.0.9")) == "10.0.0.9"
    assert client_address(_request("10.0.0.2")) == "10.0.0.2"
    # a broken header: the last proxy that handed it on
    assert client_address(_request("10.0.0.2", "203.0.113.5, not-an-address")) == "10.0.0.2"
    assert client_address(_request("not-an-address")) is None


# --- The API -----------------------------------------------------------------------------------


def test_token_endpoint_locks_an_account_after_the_limit_whatever_the_forwarded_for(
    acme, make_user, settings
):
    user = make_user(acme, "front_desk")
    client = ClinicClient(acme, REMOTE_ADDR=new_address())
    statuses = [api_sign_in(client, user.email, "wrong-password!").status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    locked = api_sign_in(client, user.email, PASSWORD)  # the right password, still refused
    assert locked.status_code == 429
    assert locked["Content-Type"] == "application/problem+json"
    body = locked.json()
    assert body["code"] == "throttled" and body["status"] == 429
    cool_off = settings.AXES_COOLOFF_TIME.total_seconds()
    assert 0 < int(locked["Retry-After"]) <= cool_off
    assert body["retry_after"] == int(locked["Retry-After"])
    # another address is locked out of this account too (the limit is the account's)
    elsewhere = ClinicClient(acme, REMOTE_ADDR=new_address())
    assert api_sign_in(elsewhere, user.email.upper(), PASSWORD).status_code == 429


def test_a_locked_account_opens_again_after_the_cool_off(acme, make_user, settings):
    user = make_user(acme, "integrator")
    client = ClinicClient(acme, REMOTE_ADDR=new_address())
    for _ in range(5):
        api_sign_in(client, user.email, "wrong-password!")
    assert api_sign_in(client, user.email, PASSWORD).status_code == 429
    later = timezone.now() + settings.AXES_COOLOFF_TIME - timedelta(seconds=30)
    with time_machine.travel(later, tick=False):
        assert api_sign_in(client, user.email, PASSWORD).status_code == 429
    with time_machine.travel(later + timedelta(seconds=60), tick=False):
        assert api_sign_in(client, user.email, PASSWORD).status_code == 200


def test_a_successful_sign_in_clears_the_account_failures(acme, make_user):
    user = make_user(acme, "integrator")
    client = ClinicClient(acme, REMOTE_ADDR=new_address())
    for _ in range(4):
        assert api_sign_in(client, user.email, "wrong-password!").status_code == 401
    assert api_sign_in(client, user.email, PASSWORD).status_code == 200
    for _ in range(4):
        assert api_sign_in(client, user.email, "wrong-password!").status_code == 401
    assert api_sign_in(client, user.email, PASSWORD).status_code == 200


def test_one_address_trying_many_emails_is_locked(acme, make_user, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 6
    user, own = make_user(acme, "front_desk"), make_user(acme, "patient")
    client = ClinicClient(acme, REMOTE_ADDR=new_address())
    for n in range(5):
        assert api_sign_in(client, f"guess{n}@acme.test", "wrong-password!").status_code == 401
    # signing in to an account of one's own clears that account's failures, not the address's
    assert api_sign_in(client, own.email, PASSWORD).status_code == 200
    assert api_sign_in(client, "guess5@acme.test", "wrong-password!").status_code == 429
    # then any account is refused from that address, even with its right password
    assert api_sign_in(client, user.email, PASSWORD).status_code == 429
    elsewhere = ClinicClient(acme, REMOTE_ADDR=new_address())
    assert api_sign_in(elsewhere, user.email, PASSWORD).status_code == 200


def test_an_overlong_email_is_counted_not_a_500(acme):
    client = ClinicClient(acme, REMOTE_ADDR=new_address())
    email = "x" * 5000 + "@acme.test"
    assert api_sign_in(client, email, "wrong-password!").status_code == 401
    # the page's form refuses it before any password check: nothing to count
    assert page_sign_in(client, "/signin/", email, "wrong-password!").status_code == 200
    with in_clinic(acme):
        attempt = AccessAttempt.objects.get()
    assert attempt.username == email[:255] and attempt.failures_since_start == 1


def test_token_requests_are_rate_limited_per_address_whatever_the_forwarded_for(acme, rates):
    rates(token="3/min")
    client = ClinicClient(acme, REMOTE_ADDR=new_address())
    body = {"email": "nobody@acme.test", "password": "whatever-whatever"}
    statuses = [
        client.post(TOKEN, body, "application/json", **forged()).status_code for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]


def test_token_refresh_is_rate_limited_per_address(acme, make_user, rates):
    rates(token="2/min")
    user = make_user(acme, "integrator")
    client = ClinicClient(acme, REMOTE_ADDR=new_address())
    refresh = str(refresh_token_for(acme, user))
    answers = []
    for _ in range(3):
        answer = client.post(
            "/api/v1/auth/token/refresh/", {"refresh": refresh}, "application/json", **forged()
        )
        answers.append(answer)
        if answer.status_code == 200:
            refresh = answer.json()["refresh"]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[-1]["Retry-After"]) > 0
    assert answers[-1].json()["code"] == "throttled"


def test_a_trusted_proxy_forwarded_for_is_honoured(acme, make_user, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    user = make_user(acme, "front_desk")
    proxy = ClinicClient(acme, REMOTE_ADDR="10.1.2.3")
    attacker, patient = new_address(), new_address()
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 3
    for n in range(3):
        proxy.post(
            TOKEN,
            {"email": f"guess{n}@acme.test", "password": "wrong-password!"},
            "application/json",
            HTTP_X_FORWARDED_FOR=attacker,
        )
    as_attacker = proxy.post(
        TOKEN, {"email": user.email, "password": PASSWORD}, "application/json",
        HTTP_X_FORWARDED_FOR=attacker,
    )  # fmt: skip
    as_someone_else = proxy.post(
        TOKEN, {"email": user.email, "password": PASSWORD}, "application/json",
        HTTP_X_FORWARDED_FOR=patient,
    )  # fmt: skip
    assert as_attacker.status_code == 429
    assert as_someone_else.status_code == 200
    with in_clinic(acme):
        assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {attacker}


def test_a_lockout_in_one_clinic_does_not_lock_the_same_email_in_another(acme, globex, make_user):
    for clinic in (acme, globex):
        make_user(clinic, "front_desk", email="same.person@example.test")
    address = new_address()
    in_acme = ClinicClient(acme, REMOTE_ADDR=address)
    for _ in range(5):
        api_sign_in(in_acme, "same.person@example.test", "wrong-password!")
    assert api_sign_in(in_acme, "same.person@example.test", PASSWORD).status_code == 429
    in_globex = ClinicClient(globex, REMOTE_ADDR=address)
    assert api_sign_in(in_globex, "same.person@example.test", PASSWORD).status_code == 200
    with in_clinic(globex):
        assert not AccessAttempt.objects.exists()


class CountingHasher(MD5PasswordHasher):
    """The test runs' MD5 hasher, counting every hash it computes (a check hashes the password
    it is given through `encode`, as does the stand-in hash for an email with no account)."""

    calls = 0

    def encode(self, password, salt):
        CountingHasher.calls += 1
        return super().encode(password, salt)


def test_a_locked_sign_in_never_runs_the_password_hasher(acme, make_user, settings):
    user = make_user(acme, "front_desk")
    settings.PASSWORD_HASHERS = ["tests.test_login_defence.CountingHasher"]
    client = ClinicClient(acme, REMOTE_ADDR=new_address())
    CountingHasher.calls = 0
    for _ in range(5):
        api_sign_in(client, user.email, "wrong-password!")
    assert CountingHasher.calls == 5  # each failure before the lockout hashed once
    CountingHasher.calls = 0
    for password in ("wrong-password!", PASSWORD):
        assert api_sign_in(client, user.email, password).status_code == 429
        assert page_sign_in(client, "/admin/login/", user.email, password).status_code == 429
        assert page_sign_in(client, "/signin/", user.email, password).status_code == 429
    assert CountingHasher.calls == 0


# --- The pages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/login/", "/signin/"])
def test_sign_in_pages_lock_after_the_limit_with_a_page_that_says_nothing_of_the_account(
    acme, make_user, path
):
    user = make_user(acme, "front_desk")
    client = ClinicClient(acme, REMOTE_ADDR=new_address())
    statuses = [
        page_sign_in(client, path, user.email, "wrong-password!").status_code for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 200, 429]
    locked = page_sign_in(client, path, user.email, PASSWORD)
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    assert locked["Content-Type"].startswith("text/html")
    page = locked.content.decode()
    assert "Too many" in page and "15 minutes" in page
    look = "admin" if path.startswith("/admin/") else "portal/auth"
    assert f"{look}/too_many_attempts.html" in {t.name for t in locked.templates}
    # an email nobody has gets the very same page
    stranger = ClinicClient(acme, REMOTE_ADDR=new_address())
    for _ in range(5):
        unknown = page_sign_in(stranger, path, "nobody@acme.test", "wrong-password!")
    assert unknown.status_code == 429
    assert unknown.content.decode().replace("nobody@acme.test", user.email) == page
    assert user.email not in page


def test_the_platform_admin_locks_its_operators(db):
    with schema_context("public"):
        User.objects.create_superuser("locked.op@platform.test", "operator-password-1")
    client = Client(HTTP_HOST="localhost", REMOTE_ADDR=new_address())
    statuses = [
        client.post(
            "/admin/login/",
            {"username": "locked.op@platform.test", "password": "wrong-password!"},
            **forged(),
        ).status_code
        for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 200, 429]
    right = client.post(
        "/admin/login/",
        {"username": "locked.op@platform.test", "password": "operator-password-1"},
    )
    assert right.status_code == 429
    assert "admin/too_many_attempts.html" in {t.name for t in right.templates}
    with schema_context("public"):
        assert AccessAttempt.objects.filter(username="locked.op@platform.test").exists()


def test_a_clinic_admin_sees_and_unlocks_a_locked_account(acme, make_user, role_users):
    user = make_user(acme, "front_desk")
    client = ClinicClient(acme, REMOTE_ADDR=new_address())
    for _ in range(5):
        api_sign_in(client, user.email, "wrong-password!")
    assert api_sign_in(client, user.email, PASSWORD).status_code == 429

    desk = session_client(acme, role_users["front_desk"])
    assert desk.get("/admin/axes/accessattempt/").status_code == 403
    admin = session_client(acme, role_users["clinic_admin"])
    listing = admin.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and user.email in listing.content.decode()
    with in_clinic(acme):
        ids = [str(pk) for pk in AccessAttempt.objects.values_list("pk", flat=True)]
    unlocked = admin.post(
        "/admin/axes/accessattempt/", {"action": "unlock", "_selected_action": ids}
    )
    assert unlocked.status_code == 302
    assert api_sign_in(client, user.email, PASSWORD).status_code == 200


def test_portal_sign_in_is_rate_limited_per_address(acme, rates):
    rates(login="3/min")
    client = ClinicClient(acme, REMOTE_ADDR=new_address())
    statuses = [
        page_sign_in(client, "/signin/", f"who{n}@acme.test", "wrong-password!").status_code
        for n in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    assert client.get("/signin/").status_code == 200  # the form itself is not counted
    assert page_sign_in(client, "/admin/login/", "x@acme.test", "y").status_code == 429


def test_sign_up_is_rate_limited_per_address(acme, rates):
    rates(signup="2/hour")
    client = ClinicClient(acme, REMOTE_ADDR=new_address())
    with in_clinic(acme):  # sign-up signs the clinic's current consents (issue 18)
        consents = [str(text.pk) for text in consent_texts_current()]

    def sign_up(n: int):
        return client.post(
            "/signup/",
            {
                "consents": consents,
                "signed_name": "Ana Lima",
                "email": f"new{n}@example.test",
                "first_name": "Ana",
                "last_name": "Lima",
                "date_of_birth": "1990-04-02",
                "password1": "a-long-new-password-9",
                "password2": "a-long-new-password-9",
                "timezone": "America/New_York",
            },
            **forged(),
        )

    statuses = [sign_up(n).status_code for n in range(3)]
    assert statuses == [302, 302, 429]
    assert 0 < int(sign_up(9)["Retry-After"]) <= 3600


def test_password_reset_is_rate_limited_per_email_and_per_address(
    acme, make_user, rates, mailoutbox
):
    rates(password_reset="4/hour", password_reset_email="2/hour")
    user = make_user(acme, "patient")
    client = ClinicClient(acme, REMOTE_ADDR=new_address())

    def reset(email: str):
        return client.post("/password-reset/", {"email": email}, **forged())

    assert [reset(user.email).status_code for _ in range(3)] == [302, 302, 429]
    assert len(mailoutbox) == 2
    # the same for an email no account has: nothing tells them apart
    assert [reset("nobody@acme.test").status_code for _ in range(2)] == [302, 429]
    assert reset("third@acme.test").status_code == 429  # the address's 4 are used up
    from_elsewhere = ClinicClient(acme, REMOTE_ADDR=new_address())
    assert from_elsewhere.post("/password-reset/", {"email": "third@acme.test"}).status_code == 302


# --- Over real HTTP ----------------------------------------------------------------------------


def test_a_live_server_locks_the_token_endpoint_whatever_the_forwarded_for(
    live_servers, committed_acme, make_user
):
    user = make_user(committed_acme, "integrator", email="live.lock@acme.test")
    url = f"http://127.0.0.1:{live_servers.http_port}{TOKEN}"
    host = live_servers.host("acme")
    statuses = []
    with httpx.Client(timeout=10) as http:
        for n, password in enumerate(["wrong-password!"] * 5 + [PASSWORD]):
            answer = http.post(
                url,
                content=json.dumps({"email": user.email, "password": password}),
                headers={
                    "Host": host,
                    "Content-Type": "application/json",
                    "X-Forwarded-For": f"192.0.2.{n}",
                },
            )
            statuses.append(answer.status_code)
    assert statuses == [401, 401, 401, 401, 429, 429]
    assert int(answer.headers["Retry-After"]) > 0
    assert answer.headers["Content-Type"] == "application/problem+json"

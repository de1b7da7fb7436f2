"""TOTP two-factor for staff, required by the clinic's setting (issue 16): enrolment in the
admin, a code after the password, the token endpoint's `otp`, patients never asked. Codes are
computed from the device's key at an instant the test travels to."""

import base64
from datetime import datetime

import pytest
import time_machine
from django.conf import settings
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.two_factor import staff_device_confirm, staff_device_pending
from clinic.permissions import ALL_ROLES, CLINIC_ADMIN, FRONT_DESK, INTEGRATOR, PATIENT, STAFF_ROLES
from practice.models import ClinicSettings
from practice.tests.helpers import problem_of
from tests.fixtures import ClinicClient, board_close_code, in_clinic, session_client
from tests.test_token_revocation import Holder

PASSWORD = "a-long-test-password"
# Five seconds into a 30-second TOTP step: a few seconds' moves stay in the same step.
START = datetime.fromisoformat("2026-12-09T15:00:05+00:00")


def _require(clinic, required: bool = True) -> None:
    with in_clinic(clinic):
        ClinicSettings.objects.update_or_create(
            id=1, defaults={"require_staff_two_factor": required}
        )


def _code(device: TOTPDevice) -> str:
    with in_clinic_of(device):
        device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


_device_clinic: dict[int, object] = {}


def in_clinic_of(device: TOTPDevice):
    return in_clinic(_device_clinic[device.pk])


def _enrolled(clinic, user: User) -> TOTPDevice:
    with in_clinic(clinic):
        device = staff_device_pending(user)
    _device_clinic[device.pk] = clinic
    with in_clinic(clinic):
        assert staff_device_confirm(device=device, code=_code(device))
    return device


def _verified_session(clinic, user: User, device: TOTPDevice) -> ClinicClient:
    client = session_client(clinic, user)
    with in_clinic(clinic):  # sessions live in the clinic's schema
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client


def _token(clinic, user: User, **extra):
    return ClinicClient(clinic, REMOTE_ADDR="10.18.0.1").post(
        "/api/v1/auth/token/",
        {"email": user.email, "password": PASSWORD, **extra},
        "application/json",
    )


@pytest.fixture
def traveller():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def test_off_by_default_staff_sign_in_with_their_password_only(acme, make_user, traveller):
    user = make_user(acme, FRONT_DESK)
    assert session_client(acme, user).get("/admin/").status_code == 200
    assert _token(acme, user).status_code == 200


def test_staff_enrol_an_app_then_the_admin_opens(acme, make_user, traveller):
    _require(acme)
    user = make_user(acme, FRONT_DESK)
    client = session_client(acme, user)
    sent = client.get("/admin/practice/patient/")
    assert sent.status_code == 302
    assert sent["Location"] == "/admin/account/two-factor/?next=%2Fadmin%2Fpractice%2Fpatient%2F"
    page = client.get(sent["Location"])
    assert page.status_code == 200 and page.context["enrolling"]
    assert b'<div class="bo-qr"' in page.content and page.context["secret"].encode() in page.content
    with in_clinic(acme):
        device = TOTPDevice.objects.get(user=user, confirmed=False)
    _device_clinic[device.pk] = acme
    assert page.context["secret"] == base64.b32encode(device.bin_key).decode()

    wrong = client.post(sent["Location"], {"code": "000000", "next": "/admin/practice/patient/"})
    assert wrong.status_code == 400 and "code" in wrong.context["form"].errors
    assert client.get("/admin/").status_code == 302  # still not verified
    traveller.shift(3)  # past the one-second pause after a wrong code
    right = client.post(
        sent["Location"], {"code": _code(device), "next": "/admin/practice/patient/"}
    )
    assert right.status_code == 302 and right["Location"] == "/admin/practice/patient/"
    assert client.get("/admin/practice/patient/").status_code == 200
    with in_clinic(acme):
        assert TOTPDevice.objects.get(user=user).confirmed


def test_enrolled_staff_enter_a_code_after_their_password(acme, make_user, traveller):
    _require(acme)
    user = make_user(acme, FRONT_DESK)
    device = _enrolled(acme, user)
    traveller.shift(30)  # the enrolment's code is used: the next step's
    client = session_client(acme, user)
    assert client.get("/admin/scheduling/board/")["Location"].startswith(
        "/admin/account/two-factor/"
    )
    assert client.get("/api/v1/me/").status_code in (401, 403)  # the session is no one yet
    page = client.get("/admin/account/two-factor/")
    assert page.status_code == 200 and not page.context["enrolling"]
    assert b"bo-qr" not in page.content and b"Secret" not in page.content
    code = _code(device)
    assert client.post("/admin/account/two-factor/", {"code": code}).status_code == 302
    assert client.get("/admin/scheduling/board/").status_code == 200
    assert client.get("/api/v1/me/").status_code == 200
    # A code works once: another browser cannot reuse it.
    other = session_client(acme, user)
    assert other.post("/admin/account/two-factor/", {"code": code}).status_code == 400


def test_a_session_verified_by_a_device_since_reset_no_longer_counts(acme, make_user, traveller):
    _require(acme)
    admin = make_user(acme, CLINIC_ADMIN)
    user = make_user(acme, FRONT_DESK)
    admin_client = _verified_session(acme, admin, _enrolled(acme, admin))
    client = _verified_session(acme, user, _enrolled(acme, user))
    assert client.get("/admin/").status_code == 200
    reset = admin_client.post(
        "/admin/accounts/user/", {"action": "reset_two_factor", "_selected_action": [user.pk]}
    )
    assert reset.status_code == 302
    with in_clinic(acme):
        assert not TOTPDevice.objects.filter(user=user).exists()
    assert client.get("/admin/")["Location"].startswith("/admin/login/")  # signed out everywhere
    with in_clinic(acme):
        user.refresh_from_db()  # its token version went up
    again = session_client(acme, user)
    assert again.get("/admin/")["Location"].startswith("/admin/account/two-factor/")
    assert again.get("/admin/account/two-factor/").context["enrolling"]  # a new app


def test_the_token_endpoint_wants_otp_from_staff(acme, make_user, traveller):
    _require(acme)
    user = make_user(acme, INTEGRATOR)
    not_enrolled = problem_of(_token(acme, user), 400, "validation-error")
    assert "enrol" in not_enrolled["errors"]["otp"][0]
    device = _enrolled(acme, user)
    traveller.shift(30)
    assert "otp" in problem_of(_token(acme, user), 400, "validation-error")["errors"]
    assert "otp" in problem_of(_token(acme, user, otp="123"), 400, "validation-error")["errors"]
    traveller.shift(3)
    assert "otp" in problem_of(_token(acme, user, otp="x" * 17), 400, "validation-error")["errors"]
    response = _token(acme, user, otp=_code(device))
    assert response.status_code == 200 and set(response.json()) >= {"access", "refresh"}
    wrong_password = _token(acme, user, password="not-the-password", otp=_code(device))
    assert wrong_password.status_code == 401  # the password first


def test_patients_are_never_asked(acme, make_user, traveller):
    _require(acme)
    patient = make_user(acme, PATIENT)
    assert _token(acme, patient).status_code == 200
    with in_clinic(acme):
        assert not TOTPDevice.objects.filter(user=patient).exists()


def test_clinic_admins_turn_it_on_in_the_admin(acme, make_user, traveller):
    admin = make_user(acme, CLINIC_ADMIN)
    client = session_client(acme, admin)
    desk = Holder(acme, make_user(acme, FRONT_DESK))
    patient = Holder(acme, make_user(acme, PATIENT))
    url = "/admin/practice/clinicsettings/1/change/"
    with in_clinic(acme):
        ClinicSettings.load()
    form = client.get(url).context["adminform"].form
    assert "require_staff_two_factor" in form.fields
    data = {name: value for name, value in form.initial.items() if value is not None}
    data = {k: v for k, v in data.items() if v is not False}
    data["require_staff_two_factor"] = "on"
    saved = client.post(url, data)
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    with in_clinic(acme):
        assert ClinicSettings.load().require_staff_two_factor
    # This admin goes on, to enrol; staff tokens got with a password alone end; patients' stay.
    assert client.get("/admin/")["Location"].startswith("/admin/account/two-factor/")
    desk.assert_revoked()
    patient.assert_works()


def test_an_unverified_staff_session_cannot_open_a_socket(committed_acme, make_user):
    acme = committed_acme
    _require(acme)
    user = make_user(acme, FRONT_DESK)
    with time_machine.travel(START, tick=False):
        device = _enrolled(acme, user)
    unverified = session_client(acme, user)
    verified = _verified_session(acme, user, device)
    cookie = unverified.cookies[settings.SESSION_COOKIE_NAME].value
    assert board_close_code(acme, cookie) == 4401
    assert board_close_code(acme, verified.cookies[settings.SESSION_COOKIE_NAME].value) is None


def test_the_enrolment_page_is_for_staff_only(acme, make_user):
    _require(acme)
    patient = make_user(acme, PATIENT)
    response = session_client(acme, patient).get("/admin/account/two-factor/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert (
        ClinicClient(acme).get("/admin/account/two-factor/")["Location"].startswith("/admin/login/")
    )


@pytest.mark.parametrize("role", [*ALL_ROLES, "anonymous"])
def test_the_account_pages_follow_the_roles(role, admin_as):
    """Every staff role reaches its own account pages (the two-factor page sends on when none
    is required); patients and visitors are sent to sign in, as everywhere in the admin."""
    client = admin_as(role)
    page = client.get("/admin/account/two-factor/?next=/admin/")
    signed_out = client.post("/admin/account/sign-out-everywhere/")
    if role in STAFF_ROLES:
        assert page.status_code == 302 and page["Location"] == "/admin/"
        assert signed_out.status_code == 302 and signed_out["Location"] == "/admin/login/"
        assert client.get("/admin/")["Location"].startswith("/admin/login/")
    else:
        for response in (page, signed_out):
            assert response.status_code == 302 and response["Location"].startswith(
                "/admin/login/?next="
            )

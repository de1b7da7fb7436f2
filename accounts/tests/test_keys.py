"""Keys (issue 16, part 1): no token signed with a key written in the repository or with
SECRET_KEY is accepted, JWT keys rotate by key id, and with DEBUG=0 the process refuses to
start without keys of its own.

This run's keys come from tests/testenv.py: SECRET_KEY and two JWT keys, the current one and a
previous one (as just after a rotation)."""

import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
import time_machine
from django.conf import settings
from django.test import override_settings

from accounts.auth import ClinicTokenObtainPairSerializer
from clinic.keys import DEV_JWT_SIGNING_KEYS, DEV_SECRET_KEY, signing_keys_parse
from tests.fixtures import ClinicClient, in_clinic, refresh_token_for

ROOT = Path(__file__).resolve().parents[2]
DEV_JWT_KID, DEV_JWT_SECRET = signing_keys_parse(DEV_JWT_SIGNING_KEYS)[0]


@pytest.fixture
def admin(acme, make_user):
    return make_user(acme, "clinic_admin")


def _claims(clinic, user) -> dict:
    """What the token endpoint would sign for `user`: a clinic_admin's access token claims."""
    with in_clinic(clinic):
        return dict(ClinicTokenObtainPairSerializer.get_token(user).access_token.payload)


def _signed(claims: dict, secret: str, kid: str | None = None) -> str:
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": kid} if kid else None)


def _me(clinic, token: str):
    return ClinicClient(clinic).get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_the_token_endpoint_signs_with_the_current_key_and_names_it(acme, admin):
    response = ClinicClient(acme).post(
        "/api/v1/auth/token/",
        {"email": admin.email, "password": "a-long-test-password"},
        "application/json",
    )
    assert response.status_code == 200
    current_kid, current_secret = settings.JWT_SIGNING_KEYS[0]
    for name in ("access", "refresh"):
        token = response.json()[name]
        assert jwt.get_unverified_header(token)["kid"] == current_kid
        jwt.decode(token, current_secret, algorithms=["HS256"])  # raises if not signed by it
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(token, settings.SECRET_KEY, algorithms=["HS256"])
    assert _me(acme, response.json()["access"]).status_code == 200


@pytest.mark.parametrize(
    ("secret", "kid"),
    [
        (DEV_SECRET_KEY, None),  # the attack of issue 16: the repository's SECRET_KEY
        (DEV_SECRET_KEY, "dev"),
        (DEV_JWT_SECRET, DEV_JWT_KID),  # the repository's development JWT key, with its kid
        ("this-run-secret-key", None),  # replaced by settings.SECRET_KEY below
    ],
    ids=["dev-secret-key", "dev-secret-key-with-kid", "dev-jwt-key", "secret-key"],
)
def test_a_token_forged_with_a_repository_key_or_secret_key_is_refused(acme, admin, secret, kid):
    if secret == "this-run-secret-key":
        secret = settings.SECRET_KEY
    forged = _signed(_claims(acme, admin), secret, kid)
    response = _me(acme, forged)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    # The same claims signed with the current key pass: only the key was wrong.
    kid, current = settings.JWT_SIGNING_KEYS[0]
    assert _me(acme, _signed(_claims(acme, admin), current, kid)).status_code == 200


def test_a_token_signed_with_the_previous_key_is_accepted(acme, admin):
    previous_kid, previous_secret = settings.JWT_SIGNING_KEYS[1]
    token = _signed(_claims(acme, admin), previous_secret, previous_kid)
    response = _me(acme, token)
    assert response.status_code == 200
    assert response.json()["id"] == admin.pk


def test_a_refresh_token_of_the_previous_key_refreshes_into_current_key_tokens(acme, admin):
    previous_kid, previous_secret = settings.JWT_SIGNING_KEYS[1]
    refresh = refresh_token_for(acme, admin)
    old = _signed(dict(refresh.payload), previous_secret, previous_kid)
    response = ClinicClient(acme).post(
        "/api/v1/auth/token/refresh/", {"refresh": old}, "application/json"
    )
    assert response.status_code == 200
    for name in ("access", "refresh"):
        assert (
            jwt.get_unverified_header(response.json()[name])["kid"]
            == settings.JWT_SIGNING_KEYS[0][0]
        )


def test_a_token_of_a_retired_key_is_refused(acme, admin):
    previous_kid, previous_secret = settings.JWT_SIGNING_KEYS[1]
    token = _signed(_claims(acme, admin), previous_secret, previous_kid)
    with override_settings(JWT_SIGNING_KEYS=settings.JWT_SIGNING_KEYS[:1]):  # retired
        assert _me(acme, token).status_code == 401
        refresh = _signed(
            dict(refresh_token_for(acme, admin).payload), previous_secret, previous_kid
        )
        response = ClinicClient(acme).post(
            "/api/v1/auth/token/refresh/", {"refresh": refresh}, "application/json"
        )
        assert response.status_code == 401


@pytest.mark.parametrize(
    ("kid", "which"),
    [
        ("never-listed", "current"),  # an unknown kid, even with the current key's signature
        (None, "current"),  # no kid at all
        ("previous", "current"),  # the previous key's kid on a current-key signature
    ],
)
def test_a_token_whose_kid_does_not_name_its_key_is_refused(acme, admin, kid, which):
    current_kid, current_secret = settings.JWT_SIGNING_KEYS[0]
    if kid == "previous":
        kid = settings.JWT_SIGNING_KEYS[1][0]
    token = _signed(_claims(acme, admin), current_secret, kid)
    assert _me(acme, token).status_code == 401


def test_a_token_with_a_malformed_header_is_refused(acme):
    assert _me(acme, "not.a.token").status_code == 401
    assert _me(acme, "eyJhbGciOiJub25lIn0.e30.").status_code == 401  # alg none


# The settings module itself, in a process of its own (python -c "import django; django.setup()")


def _setup(**env_overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "clinic.settings", **env_overrides}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


RUN_JWT_KEYS = os.environ["JWT_SIGNING_KEYS"]
RUN_SECRET = os.environ["SECRET_KEY"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        # An empty variable, so that a .env file cannot fill it in either.
        ({"SECRET_KEY": ""}, "DEBUG=0 and SECRET_KEY is not set"),
        ({"SECRET_KEY": DEV_SECRET_KEY}, "SECRET_KEY is the development key"),
        ({"JWT_SIGNING_KEYS": ""}, "DEBUG=0 and JWT_SIGNING_KEYS is not set"),
        ({"JWT_SIGNING_KEYS": DEV_JWT_SIGNING_KEYS}, "is a development key"),
        ({"JWT_SIGNING_KEYS": f"{RUN_JWT_KEYS},{DEV_JWT_SIGNING_KEYS}"}, "is a development key"),
        ({"JWT_SIGNING_KEYS": f"k1:{RUN_SECRET}"}, "is SECRET_KEY"),
        ({"JWT_SIGNING_KEYS": "k1:short"}, "shorter than 32 characters"),
        ({"JWT_SIGNING_KEYS": "no-kid-given-here-0123456789abcdefghij"}, "`kid:secret` pairs"),
        ({"JWT_SIGNING_KEYS": f"{RUN_JWT_KEYS},{RUN_JWT_KEYS}"}, "twice"),
    ],
    ids=[
        "no-secret-key", "dev-secret-key", "no-jwt-keys", "dev-jwt-key",
        "dev-jwt-key-kept-as-previous", "jwt-key-is-secret-key", "short", "no-kid", "same-kid",
    ],
)  # fmt: skip
def test_with_debug_off_the_settings_refuse_to_start_without_keys_of_its_own(env, message):
    result = _setup(DEBUG="0", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_with_debug_off_and_keys_of_its_own_the_settings_start():
    result = _setup(DEBUG="0", SECRET_KEY=RUN_SECRET, JWT_SIGNING_KEYS=RUN_JWT_KEYS)
    assert result.returncode == 0, result.stderr


def test_with_debug_on_development_starts_without_any_key():
    script = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.JWT_SIGNING_KEYS[0][0])"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "clinic.settings", "DEBUG": "1"}
    env.update(SECRET_KEY="", JWT_SIGNING_KEYS="")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == DEV_JWT_KID


# scripts/keys.py: the local run's keys (`make run`, scripts/with-services)


def _keys_script(tmp_path: Path, *args: str) -> dict[str, str]:
    """Run a copy of scripts/keys.py placed in `tmp_path/scripts/`, so its `.run/` is
    `tmp_path/.run/`; returns the KEY=value lines it prints."""
    script = tmp_path / "scripts" / "keys.py"
    if not script.exists():
        script.parent.mkdir()
        script.write_text((ROOT / "scripts" / "keys.py").read_text())
    out = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def test_the_local_keys_are_generated_once_private_and_accepted_with_debug_off(tmp_path):
    first = _keys_script(tmp_path)
    secrets_file = tmp_path / ".run" / "secrets.env"
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    assert _keys_script(tmp_path) == first  # kept: sessions and tokens survive a restart
    assert first["SECRET_KEY"] != RUN_SECRET
    result = _setup(DEBUG="0", **first)
    assert result.returncode == 0, result.stderr


def test_rotating_the_local_jwt_key_keeps_the_previous_one_only(tmp_path):
    first = signing_keys_parse(_keys_script(tmp_path)["JWT_SIGNING_KEYS"])
    second = signing_keys_parse(_keys_script(tmp_path, "rotate")["JWT_SIGNING_KEYS"])
    third = _keys_script(tmp_path, "rotate")
    assert len(second) == 2 and second[1] == first[0] and second[0] != first[0]
    assert signing_keys_parse(third["JWT_SIGNING_KEYS"])[1] == second[0]  # the oldest dropped
    assert len(signing_keys_parse(third["JWT_SIGNING_KEYS"])) == 2


def test_a_repeated_token_is_verified_once_and_still_checked_each_time(acme, admin, monkeypatch):
    """The process keeps the tokens it verified (accounts.auth._VERIFIED): the same token again
    skips the signature check, but its expiry, its key and its user are checked every time."""
    from accounts import auth
    from accounts.services import users_sign_out_everywhere
    from accounts.tokens import token_backend

    decoded = []
    decode = token_backend.decode
    monkeypatch.setattr(
        token_backend, "decode", lambda *a, **k: decoded.append(1) or decode(*a, **k)
    )
    monkeypatch.setattr(auth, "_VERIFIED", {})
    previous_kid, previous_secret = settings.JWT_SIGNING_KEYS[1]
    claims = _claims(acme, admin)
    token = _signed(claims, previous_secret, previous_kid)
    assert _me(acme, token).status_code == 200
    assert _me(acme, token).status_code == 200
    assert len(decoded) == 1  # the second request used the verified token
    with override_settings(JWT_SIGNING_KEYS=settings.JWT_SIGNING_KEYS[:1]):  # key retired
        assert _me(acme, token).status_code == 401
    assert _me(acme, token).status_code == 200  # verified afresh with the key listed again
    with time_machine.travel(claims["exp"] + 6, tick=False):  # past the expiry and the leeway
        assert _me(acme, token).status_code == 401
    fresh = _signed(_claims(acme, admin), previous_secret, previous_kid)
    assert _me(acme, fresh).status_code == 200
    users_sign_out_everywhere(user_ids=[admin.pk])  # revoked: refused at once, cached or not
    assert _me(acme, fresh).status_code == 401

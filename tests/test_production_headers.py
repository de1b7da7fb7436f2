"""Production headers (issue 16, part 6): the Content Security Policy on every answer, each
clinic's forms accepted from its own pages only, and, with CLINIC_PRODUCTION=1 behind the TLS
proxy, HSTS and Secure cookies, seen by `curl -I` against a real server process."""

import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from tests.fixtures import ClinicClient, host_of
from tests.live import BIN, _answers_http, _server_env, _start, _stop, free_ports

PASSWORD = "a-long-test-password"


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


@pytest.mark.parametrize(
    "path",
    ["/", "/signin/", "/practitioners/", "/admin/login/", "/api/v1/appointment-types/",
     "/api/docs/", "/no-such-page/"],
)  # fmt: skip
def test_every_answer_carries_the_content_security_policy(acme, path):
    response = ClinicClient(acme).get(path)
    assert response.status_code in (200, 302, 404), path
    policy = _policy(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"][0] == "'self'" and "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-inline'" not in policy["style-src"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    # Sockets to this clinic's own websocket server only, not a sibling clinic's.
    own_socket = f"ws://{host_of(acme).split(':')[0]}:{settings.CLINIC_WS_PORT}"
    assert policy["connect-src"] == ["'self'", own_socket]
    assert response["Referrer-Policy"] == "same-origin"


def test_an_inline_style_of_ours_carries_the_policys_nonce(acme):
    response = ClinicClient(acme).get("/no-such-page/")  # the error page's inline style sheet
    nonce = re.search(r"<style nonce=\"([^\"]+)\">", response.content.decode()).group(1)
    assert f"'nonce-{nonce}'" in _policy(response)["style-src"]


def test_a_kept_policy_is_the_hosts_own_and_a_nonce_still_gets_its_own(acme, globex):
    """An answer with no nonce (the API's) gets its host's policy as built the first time
    (realtime.links): the same again, a sibling host's names that host's socket, and a page
    that uses a nonce still gets a policy with it."""
    first = ClinicClient(acme).get("/api/v1/appointment-types/")
    again = ClinicClient(acme).get("/api/v1/appointment-types/")
    assert again["Content-Security-Policy"] == first["Content-Security-Policy"]
    sibling = _policy(ClinicClient(globex).get("/api/v1/appointment-types/"))["connect-src"]
    assert sibling == ["'self'", f"ws://{host_of(globex).split(':')[0]}:{settings.CLINIC_WS_PORT}"]
    page = ClinicClient(acme).get("/no-such-page/")
    nonce = re.search(r"<style nonce=\"([^\"]+)\">", page.content.decode()).group(1)
    assert f"'nonce-{nonce}'" in _policy(page)["style-src"]
    assert (
        "nonce"
        not in ClinicClient(acme).get("/api/v1/appointment-types/")["Content-Security-Policy"]
    )


def test_a_form_post_from_a_sibling_clinics_host_is_refused(acme, globex, make_user):
    """CSRF: the Origin must be the clinic's own host (a wildcard of every clinic's host was
    trusted before), whatever the token."""
    user = make_user(acme, "front_desk")
    client = ClinicClient(acme, enforce_csrf_checks=True)
    client.get("/admin/login/")
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    form = {"username": user.email, "password": PASSWORD, "csrfmiddlewaretoken": token}
    for origin in (
        f"http://{host_of(globex)}",  # a sibling clinic
        f"http://{host_of(acme)}.evil.example",
        "http://evil.example",
        f"https://{host_of(acme)}",  # another scheme is another origin
    ):
        refused = client.post("/admin/login/", form, HTTP_ORIGIN=origin)
        assert refused.status_code == 403, origin
    own = client.post("/admin/login/", form, HTTP_ORIGIN=f"http://{host_of(acme)}")
    assert own.status_code == 302  # signed in, sent on to the admin


# A real server process with the production settings, as behind the TLS proxy


@pytest.fixture(scope="module")
def production_server(django_db_setup) -> Iterator[int]:
    """granian with CLINIC_PRODUCTION=1 on the test database; yields its port."""
    port, ws_port = free_ports(2)
    env = _server_env(port, ws_port, f"{settings.CELERY_TASK_DEFAULT_QUEUE}-production")
    env["CLINIC_PRODUCTION"] = "1"
    log = Path(tempfile.mkdtemp(prefix="clinic-production-")) / "http.log"
    argv = [str(BIN / "granian"), "--interface", "wsgi", "clinic.wsgi:application",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--no-ws",
            "--log-level", "warning"]  # fmt: skip
    process = _start(argv, env, log)
    try:
        deadline = time.monotonic() + 60
        while not _answers_http(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the production server did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield port
    finally:
        _stop(process)


def _curl_head(port: int, path: str, *headers: str) -> tuple[int, dict[str, list[str]]]:
    """`curl -I` (HEAD) of an acme page; the status and the headers by lower-cased name."""
    argv = ["curl", "-sS", "-I", "--max-time", "20",
            "--resolve", f"acme.localhost:{port}:127.0.0.1"]  # fmt: skip
    for header in headers:
        argv += ["-H", header]
    out = subprocess.run(
        [*argv, f"http://acme.localhost:{port}{path}"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    lines = out.strip().splitlines()
    status = int(lines[0].split()[1])
    found: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        found.setdefault(name.strip().lower(), []).append(value.strip())
    return status, found


def test_curl_sees_hsts_csp_and_secure_cookies_behind_the_tls_proxy(production_server):
    status, headers = _curl_head(production_server, "/signin/", "X-Forwarded-Proto: https")
    assert status == 200
    assert headers["strict-transport-security"] == ["max-age=31536000; includeSubDomains"]
    assert "script-src 'self'" in headers["content-security-policy"][0]
    # Behind the proxy the page's socket is on its own origin (wss://, covered by 'self').
    assert "wss://acme.localhost" in headers["content-security-policy"][0]
    assert headers["referrer-policy"] == ["same-origin"]
    assert headers["x-content-type-options"] == ["nosniff"]
    csrf = [c for c in headers["set-cookie"] if c.startswith(f"{settings.CSRF_COOKIE_NAME}=")]
    assert csrf and "Secure" in csrf[0].split("; "), headers["set-cookie"]


def test_without_the_proxys_https_header_no_hsts_is_sent(production_server):
    status, headers = _curl_head(production_server, "/signin/")
    assert status == 200
    assert "strict-transport-security" not in headers  # only over HTTPS, as RFC 6797 says
    assert "content-security-policy" in headers


def test_a_client_cannot_claim_https_through_another_header(production_server):
    """Only X-Forwarded-Proto, which the proxy overwrites, is trusted."""
    _, headers = _curl_head(production_server, "/signin/", "X-Forwarded-Ssl: on")
    assert "strict-transport-security" not in headers


def test_the_session_cookie_of_a_sign_in_behind_the_proxy_is_secure(
    production_server, committed_acme, make_user
):
    user = make_user(committed_acme, "front_desk")
    base = f"http://127.0.0.1:{production_server}"
    host = f"acme.localhost:{production_server}"
    headers = {"Host": host, "X-Forwarded-Proto": "https"}
    with httpx.Client(base_url=base, headers=headers, timeout=20) as client:
        page = client.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        csrf_cookie = page.cookies[settings.CSRF_COOKIE_NAME]
        signed_in = client.post(
            "/admin/login/?next=/admin/",
            data={"username": user.email, "password": PASSWORD, "csrfmiddlewaretoken": token},
            headers={"Origin": f"https://{host}", "Cookie": f"csrftoken={csrf_cookie}"},
        )
    assert signed_in.status_code == 302, signed_in.text[:500]
    session = [
        c for c in signed_in.headers.get_list("set-cookie")
        if c.startswith(f"{settings.SESSION_COOKIE_NAME}=")
    ]  # fmt: skip
    assert session, signed_in.headers
    assert {"Secure", "HttpOnly"} <= {part.strip() for part in session[0].split(";")}

"""Staff sessions end after STAFF_SESSION_IDLE_MINUTES idle and STAFF_SESSION_MAX_HOURS after
they began; patients' sessions do not (issue 16). The clock is moved with time-machine."""

from datetime import datetime, timedelta

import pytest
import time_machine
from django.conf import settings

from clinic.permissions import FRONT_DESK
from tests.fixtures import board_close_code, in_clinic, session_client

START = datetime.fromisoformat("2026-12-09T14:00:00+00:00")


@pytest.fixture(autouse=True)
def _timeouts(settings):
    """The defaults of clinic/settings.py (the test run sets far-off ones, tests/testenv.py)."""
    settings.STAFF_SESSION_IDLE_MINUTES = 30
    settings.STAFF_SESSION_MAX_HOURS = 12


def _admin(client):
    return client.get("/admin/")


def _signed_out_of_the_admin(response, why: str) -> None:
    assert response.status_code == 302, response.status_code
    assert response["Location"].startswith("/admin/login/?next=/admin/")
    assert why in response.wsgi_request._messages._queued_messages[0].message


def test_a_staff_session_ends_after_the_idle_minutes(acme, make_user):
    client = session_client(acme, make_user(acme, FRONT_DESK))
    idle = timedelta(minutes=settings.STAFF_SESSION_IDLE_MINUTES)
    with time_machine.travel(START, tick=False) as traveller:
        assert _admin(client).status_code == 200
        traveller.move_to(START + idle - timedelta(minutes=1))
        assert _admin(client).status_code == 200  # used: idle counts from here
        traveller.move_to(START + 2 * idle - timedelta(minutes=2))
        assert _admin(client).status_code == 200
        traveller.move_to(START + 3 * idle)
        _signed_out_of_the_admin(_admin(client), "without activity")
        login = client.get("/admin/login/?next=/admin/")
        assert b"without activity" in login.content  # the message, on the login page
        assert _admin(client).status_code == 302  # the session is gone
        assert client.get("/api/v1/me/").status_code in (401, 403)


def test_a_staff_session_ends_after_the_absolute_hours_however_busy(acme, make_user):
    client = session_client(acme, make_user(acme, FRONT_DESK))
    step = timedelta(minutes=settings.STAFF_SESSION_IDLE_MINUTES - 5)
    limit = timedelta(hours=settings.STAFF_SESSION_MAX_HOURS)
    with time_machine.travel(START, tick=False) as traveller:
        now = START
        while now + step <= START + limit:
            traveller.move_to(now)
            assert _admin(client).status_code == 200, now
            now += step
        traveller.move_to(START + limit + timedelta(minutes=1))
        _signed_out_of_the_admin(_admin(client), "hours at most")


def test_the_api_under_an_expired_staff_session_is_not_signed_in(acme, make_user):
    client = session_client(acme, make_user(acme, FRONT_DESK))
    with time_machine.travel(START, tick=False) as traveller:
        assert client.get("/api/v1/me/").status_code == 200
        traveller.move_to(START + timedelta(minutes=settings.STAFF_SESSION_IDLE_MINUTES + 1))
        response = client.get("/api/v1/me/")
        assert response.status_code in (401, 403)
        assert response["Content-Type"] == "application/problem+json"


def test_patients_keep_their_sessions(acme, make_user):
    from practice.services import patient_register

    with in_clinic(acme):
        patient = patient_register(
            email="casey@acme.test",
            password="a-long-test-password",
            first_name="Casey",
            last_name="Patient",
            date_of_birth="1990-01-01",
            timezone="America/New_York",
        )
    client = session_client(acme, patient.user)
    with time_machine.travel(START, tick=False) as traveller:
        assert client.get("/appointments/").status_code == 200
        traveller.move_to(START + timedelta(hours=settings.STAFF_SESSION_MAX_HOURS + 2))
        assert client.get("/appointments/").status_code == 200


def test_staff_timeouts_follow_the_settings(acme, make_user, settings):
    settings.STAFF_SESSION_IDLE_MINUTES = 5
    client = session_client(acme, make_user(acme, FRONT_DESK))
    with time_machine.travel(START, tick=False) as traveller:
        assert _admin(client).status_code == 200
        traveller.move_to(START + timedelta(minutes=6))
        _signed_out_of_the_admin(_admin(client), "5 minutes")


def test_an_expired_staff_session_cannot_open_a_socket(committed_acme, make_user):
    acme = committed_acme
    client = session_client(acme, make_user(acme, FRONT_DESK))
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    with time_machine.travel(START, tick=False) as traveller:
        assert _admin(client).status_code == 200  # the session's start, saved
        assert board_close_code(acme, cookie) is None
        traveller.move_to(START + timedelta(minutes=settings.STAFF_SESSION_IDLE_MINUTES + 1))
        assert board_close_code(acme, cookie) == 4401

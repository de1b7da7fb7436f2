"""Helpers for tests that talk to the live servers (tests/live.py) as real clients do: HTTP to
granian, websockets to daphne, each clinic by its own host on 127.0.0.1."""

import http.client
import json
import socket
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from scheduling.tests import factories as f
from tests.fixtures import in_clinic, refresh_token_for, session_client


def clinic_host(slug: str) -> str:
    return f"{slug}.{settings.CLINIC_BASE_DOMAIN}"


def open_socket(
    live_servers,
    slug: str,
    path: str,
    *,
    origin: str | None = None,
    cookie: str | None = None,
    subprotocols: list[str] | None = None,
) -> ClientConnection:
    """A websocket to daphne at `ws://<slug>.localhost:<ws port><path>` (use it in `with`). It
    sends an Origin header only when `origin` is given (a server-side client sends none) and the
    session cookie only when `cookie` is given (as a browser does)."""
    headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"} if cookie else None
    return connect(
        f"ws://{clinic_host(slug)}:{live_servers.ws_port}{path}",
        sock=socket.create_connection(("127.0.0.1", live_servers.ws_port)),
        origin=origin,
        additional_headers=headers,
        subprotocols=subprotocols,
        open_timeout=10,
        proxy=None,
    )


def next_frame(websocket: ClientConnection, timeout: float = 15) -> dict:
    """The next JSON frame; a socket the server closed fails the test with its close code."""
    try:
        return json.loads(websocket.recv(timeout=timeout))
    except ConnectionClosed as closed:
        raise AssertionError(f"the server closed the socket: {closed.rcvd}") from closed


def frames_until_closed(websocket: ClientConnection, timeout: float = 60) -> tuple[list, int]:
    """Every frame until the server closes the socket, and the close code."""
    frames = []
    try:
        while True:
            frames.append(json.loads(websocket.recv(timeout=timeout)))
    except ConnectionClosed as closed:
        return frames, closed.rcvd.code if closed.rcvd else None


def api(live_servers, slug: str, method: str, path: str, *, token: str, body=None, headers=None):
    """(status, JSON) of a call to the live HTTP server, signed in by JWT (`headers`: more)."""
    connection = http.client.HTTPConnection("127.0.0.1", live_servers.http_port, timeout=30)
    try:
        connection.request(
            method,
            path,
            body=json.dumps(body) if body is not None else None,
            headers={
                "Host": live_servers.host(slug),
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                **(headers or {}),
            },
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def access_token(clinic, user) -> str:
    return str(refresh_token_for(clinic, user).access_token)


def session_cookie(clinic, user) -> str:
    return session_client(clinic, user).cookies[settings.SESSION_COOKIE_NAME].value


@dataclass
class Practice:
    """One practitioner working 9-17 every day, a 60-minute visit type and a patient."""

    practitioner_id: int
    type_id: int
    patient_id: int
    day: date

    def smart_request(self) -> dict:
        return {
            "patient": self.patient_id,
            "specialty": "behavior-analysis",
            "appointment_type": self.type_id,
            "earliest_date": self.day.isoformat(),
            "latest_date": (self.day + timedelta(days=14)).isoformat(),
            "tz": "America/New_York",
        }

    def booking(self, hour: int) -> dict:
        return {
            "patient": self.patient_id,
            "practitioner": self.practitioner_id,
            "appointment_type": self.type_id,
            "start": f.local(self.day, hour).isoformat(),
        }


def practice(clinic, *, patient_user=None) -> Practice:
    with in_clinic(clinic):
        aba = f.specialty("behavior-analysis")
        practitioner = f.practitioner(specialties=(aba,))
        visit = f.appointment_type(practitioner, minutes=60, notice=0)
        patient = f.patient(user=patient_user)
    return Practice(practitioner.pk, visit.pk, patient.pk, f.next_weekday(1))

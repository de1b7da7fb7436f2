"""The README's role table on the websockets, generated from the ASGI routing: every socket
route, for every role and an anonymous visitor (signed in by session, from the clinic's own
pages, as a browser), opens or is refused exactly as the table says. A route added without a
row here fails `test_every_socket_route_is_in_the_table`.

What the table says of the sockets: the schedule board (`/ws/schedule/`) is staff's who may
view appointments (a practitioner hears only their own column); a smart-booking job
(`/ws/jobs/<id>/`) is its patient's and staff's who may view jobs; the waitlist
(`/ws/waitlist/`) is a patient's own; the ping socket is a tenancy probe open to anyone.
"""

from channels.testing import WebsocketCommunicator
from django.conf import settings

from clinic.asgi import NO_ROUTE_CLOSE_CODE, application, routes
from clinic.permissions import (
    BILLER,
    CLINIC_ADMIN,
    FRONT_DESK,
    INTEGRATOR,
    PATIENT,
    PRACTITIONER,
)
from scheduling.models import SmartBookingJob
from scheduling.tests import factories as f
from tests.fixtures import host_of, in_clinic, run_async, session_client

ANON = "anonymous"
ROLES = (CLINIC_ADMIN, FRONT_DESK, PRACTITIONER, BILLER, INTEGRATOR, PATIENT, ANON)
OPEN, SIGN_IN, REFUSED, NOT_FOUND = None, 4401, 4403, 4404

# route -> the close code each role gets (OPEN: the socket stays open and speaks first)
TABLE = {
    "ws/ping/": dict.fromkeys(ROLES, OPEN),
    "ws/schedule/": {
        CLINIC_ADMIN: OPEN, FRONT_DESK: OPEN, PRACTITIONER: OPEN, BILLER: OPEN,
        INTEGRATOR: OPEN, PATIENT: REFUSED, ANON: SIGN_IN,
    },
    "ws/jobs/<uuid:job_id>/": {  # the patient user's own job
        CLINIC_ADMIN: OPEN, FRONT_DESK: OPEN, PRACTITIONER: REFUSED, BILLER: REFUSED,
        INTEGRATOR: OPEN, PATIENT: OPEN, ANON: SIGN_IN,
    },
    "ws/waitlist/": {
        CLINIC_ADMIN: REFUSED, FRONT_DESK: REFUSED, PRACTITIONER: REFUSED, BILLER: REFUSED,
        INTEGRATOR: REFUSED, PATIENT: OPEN, ANON: SIGN_IN,
    },
}  # fmt: skip


def _routes() -> list[str]:
    return [str(route.pattern) for route in routes if str(route.pattern)]


def test_every_socket_route_is_in_the_table():
    assert set(_routes()) == set(TABLE)


def test_every_socket_follows_the_table(committed_acme, make_user):
    acme = committed_acme
    users = {role: make_user(acme, role) for role in ROLES if role != ANON}
    with in_clinic(acme):
        patient = f.patient(user=users[PATIENT])
        job = SmartBookingJob.objects.create(patient=patient, request={})
        other_job = SmartBookingJob.objects.create(patient=f.patient(first="Other"), request={})
    cookies = {
        role: session_client(acme, user).cookies[settings.SESSION_COOKIE_NAME].value
        for role, user in users.items()
    }
    host = host_of(acme)
    paths = {
        "ws/ping/": "/ws/ping/",
        "ws/schedule/": "/ws/schedule/",
        "ws/jobs/<uuid:job_id>/": f"/ws/jobs/{job.pk}/",
        "ws/waitlist/": "/ws/waitlist/",
    }

    async def close_code(path: str, role: str) -> int | None:
        headers = [
            (b"host", host.encode()),
            (b"origin", f"http://{host.split(':')[0]}:8000".encode()),
        ]
        if role in cookies:
            headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookies[role]}".encode()))
        socket = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await socket.connect(timeout=10)
        assert connected
        first = await socket.receive_output(timeout=10)
        await socket.disconnect()
        return first.get("code") if first["type"] == "websocket.close" else OPEN

    async def walk() -> dict:
        return {
            (route, role): await close_code(path, role)
            for route, path in paths.items()
            for role in ROLES
        }

    seen = run_async(walk())
    expected = {(route, role): code for route, row in TABLE.items() for role, code in row.items()}
    assert seen == expected
    # another patient's job and a path no route matches
    assert run_async(close_code(f"/ws/jobs/{other_job.pk}/", PATIENT)) == REFUSED
    assert run_async(close_code("/ws/nowhere/", PATIENT)) == NOT_FOUND == NO_ROUTE_CLOSE_CODE

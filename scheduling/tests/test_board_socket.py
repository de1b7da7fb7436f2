"""The schedule board's live feed (/ws/schedule/) on the real routing and the real Redis
channel layer: signed-in staff hear every committed booking change of their clinic, a
practitioner only their own, and everyone else is refused."""

import json

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings

from clinic.asgi import application
from scheduling import services
from tests.fixtures import in_clinic, run_async, session_client

from .factories import build_world


def cookie_of(clinic, user) -> str:
    return session_client(clinic, user).cookies[settings.SESSION_COOKIE_NAME].value


async def open_board_socket(host: str, cookie: str | None = None):
    """(communicator, first frame): the `ready` message, or the close frame."""
    headers = [(b"host", host.encode()), (b"origin", f"http://{host}:8000".encode())]
    if cookie:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    communicator = WebsocketCommunicator(application, "/ws/schedule/", headers=headers)
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    first = await communicator.receive_output(timeout=10)
    if first["type"] == "websocket.close":
        return communicator, {"closed": first.get("code")}
    return communicator, json.loads(first["text"])


async def events(communicator, count: int) -> list[dict]:
    return [await communicator.receive_json_from(timeout=10) for _ in range(count)]


def test_staff_hear_every_change_and_a_practitioner_only_their_own(committed_acme, make_user):
    acme = committed_acme
    practitioner_user = make_user(acme, "practitioner")
    desk_cookie = cookie_of(acme, make_user(acme, "front_desk"))
    biller_cookie = cookie_of(acme, make_user(acme, "biller"))
    own_cookie = cookie_of(acme, practitioner_user)
    with in_clinic(acme):
        world = build_world(practitioner_user)

    @database_sync_to_async
    def change_the_schedule():
        with in_clinic(acme):
            booked = services.appointment_book(
                patient=world.other_patient,
                practitioner=world.beta,
                appointment_type=world.visit,
                start=world.at(15),
            )
            services.appointment_cancel(appointment=world.alpha_visit, reason="Unwell")
            return booked

    async def scenario():
        desk, desk_ready = await open_board_socket("acme.localhost", desk_cookie)
        biller, biller_ready = await open_board_socket("acme.localhost", biller_cookie)
        own, own_ready = await open_board_socket("acme.localhost", own_cookie)
        assert desk_ready == biller_ready == {"type": "ready", "scope": "clinic"}
        assert own_ready == {"type": "ready", "scope": "own"}
        booked = await change_the_schedule()
        heard_by_desk = await events(desk, 2)
        heard_by_biller = await events(biller, 2)
        heard_by_own = await events(own, 1)
        assert await own.receive_nothing(timeout=0.5)  # Beta's booking is not Alpha's business
        for communicator in (desk, biller, own):
            await communicator.disconnect()
        return booked, heard_by_desk, heard_by_biller, heard_by_own

    booked, desk_events, biller_events, own_events = run_async(scenario())
    assert [(e["type"], e["appointment"]["id"]) for e in desk_events] == [
        ("appointment.booked", booked.pk),
        ("appointment.cancelled", world.alpha_visit.pk),
    ]
    assert biller_events == desk_events
    assert desk_events[0]["appointment"]["patient_name"] == str(world.other_patient)
    assert [(e["type"], e["appointment"]["id"]) for e in own_events] == [
        ("appointment.cancelled", world.alpha_visit.pk)
    ]


def test_strangers_patients_and_other_clinics_are_refused(
    committed_acme, committed_globex, make_user
):
    acme, globex = committed_acme, committed_globex
    patient_cookie = cookie_of(acme, make_user(acme, "patient"))
    acme_desk_cookie = cookie_of(acme, make_user(acme, "front_desk"))
    globex_desk_cookie = cookie_of(globex, make_user(globex, "front_desk"))

    async def close_code(host, cookie):
        communicator, first = await open_board_socket(host, cookie)
        await communicator.disconnect()
        return first.get("closed") or first

    async def scenario():
        return [
            await close_code("acme.localhost", None),
            await close_code("acme.localhost", "not-a-session"),
            await close_code("acme.localhost", patient_cookie),
            await close_code("acme.localhost", globex_desk_cookie),  # globex's session abroad
            await close_code("globex.localhost", acme_desk_cookie),
            await close_code("globex.localhost", globex_desk_cookie),
        ]

    codes = run_async(scenario())
    assert codes[:5] == [4401, 4401, 4403, 4401, 4401]
    assert codes[5] == {"type": "ready", "scope": "clinic"}


def test_a_clinics_events_never_reach_another_clinics_board(
    committed_acme, committed_globex, make_user
):
    acme, globex = committed_acme, committed_globex
    globex_cookie = cookie_of(globex, make_user(globex, "front_desk"))
    with in_clinic(acme):
        world = build_world(None)

    @database_sync_to_async
    def book_in_acme():
        with in_clinic(acme):
            services.appointment_cancel(appointment=world.beta_visit, reason="x")

    async def scenario():
        watcher, ready = await open_board_socket("globex.localhost", globex_cookie)
        assert ready["type"] == "ready"
        await book_in_acme()
        quiet = await watcher.receive_nothing(timeout=1)
        await watcher.disconnect()
        return quiet

    assert run_async(scenario())

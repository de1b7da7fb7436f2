"""The patient's waitlist socket (`/ws/waitlist/`, Channels' communicator on the real routing
and the real Redis channel layer): a patient hears their own offers as they are held and
released and nobody else's; strangers and staff are refused; the patient page's live part is
the page's own."""

import asyncio
import json

import pytest
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.conf import settings

from clinic.asgi import application
from scheduling import services as scheduling
from scheduling.tests import factories as f
from tests.fixtures import host_of, in_clinic, run_async, session_client

from .. import services
from ..models import WaitlistOffer
from .factories import offers_by_hand, waiting_world


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Each test's sockets run in an event loop of their own (`asyncio.run`): the channel layer
    is made afresh for them, as a server process makes it once for its one loop. The process's
    layer otherwise outlives the loop it was used in, and a receive lock still held there when
    that loop ended fails in the next one ("bound to a different event loop": the clock check
    at 14:00 in New York, once)."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def _headers(clinic, client=None) -> list[tuple[bytes, bytes]]:
    host = host_of(clinic)
    headers = [(b"host", host.encode()), (b"origin", f"http://{host.split(':')[0]}:8000".encode())]
    if client is not None:
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return headers


async def _open(clinic, client=None) -> tuple[WebsocketCommunicator, dict]:
    socket = WebsocketCommunicator(application, "/ws/waitlist/", headers=_headers(clinic, client))
    connected, _ = await socket.connect(timeout=10)
    assert connected
    first = await socket.receive_output(timeout=10)
    return socket, first


def _close_code(clinic, client=None) -> int | None:
    async def run():
        socket, first = await _open(clinic, client)
        await socket.disconnect()
        return first.get("code")

    return run_async(run())


def test_strangers_staff_and_other_clinics_are_refused(committed_acme, make_user):
    acme = committed_acme
    desk = make_user(acme, "front_desk")
    assert _close_code(acme) == 4401  # not signed in
    assert _close_code(acme, session_client(acme, desk)) == 4403  # no patient record


def test_a_patient_hears_their_own_offers_held_and_released_and_no_one_elses(
    committed_acme, make_user, monkeypatch
):
    offers_by_hand(monkeypatch)
    acme = committed_acme
    waiting_user, other_user = make_user(acme, "patient"), make_user(acme, "patient")
    with in_clinic(acme):
        world = waiting_world()
        waiting = f.patient(user=waiting_user, first="Wanda")
        f.patient(user=other_user, first="Otto")
        world.entry(patient=waiting)
    clients = {
        "waiting": session_client(acme, waiting_user),
        "other": session_client(acme, other_user),
    }

    def cancel_then_decline() -> int:
        with in_clinic(acme):
            cancelled = scheduling.appointment_cancel(appointment=world.visit, reason="Sick")
            offer = services.slot_offer(slot=services.freed_slot_of(cancelled, "cancelled", {}))
            assert offer is not None
            services.offer_decline(offer=offer)
            return offer.pk

    async def run():
        sockets = {}
        for who, client in clients.items():
            sockets[who], first = await _open(acme, client)
            assert json.loads(first["text"]) == {"type": "ready"}
        offer_id = await asyncio.to_thread(cancel_then_decline)
        heard = [await sockets["waiting"].receive_json_from(timeout=10) for _ in range(2)]
        assert await sockets["other"].receive_nothing(timeout=1)
        for socket in sockets.values():
            await socket.disconnect()
        return offer_id, heard

    offer_id, heard = run_async(run())
    assert [(event["type"], event["offer"]["id"]) for event in heard] == [
        ("waitlist.held", offer_id),
        ("waitlist.released", offer_id),
    ]
    assert heard[0]["offer"]["status"] == WaitlistOffer.Status.HELD
    assert heard[1]["offer"]["status"] == WaitlistOffer.Status.DECLINED


def test_the_live_part_of_the_page_is_the_patients_offers_as_they_are_now(acme, make_user):
    user = make_user(acme, "patient")
    with in_clinic(acme):
        world = waiting_world()
        patient = f.patient(user=user, first="Wanda")
        world.entry(patient=patient)
        cancelled = scheduling.appointment_cancel(appointment=world.visit, reason="Sick")
        services.slot_offer(slot=services.freed_slot_of(cancelled, "cancelled", {}))
    client = session_client(acme, user)
    page = client.get("/waitlist/").content.decode()
    assert 'data-waitlist-live data-ws-url="ws://' in page and "/ws/waitlist/" in page
    live = client.get("/waitlist/live/")
    assert live.status_code == 200
    body = live.content.decode()
    assert "Held for you" in body and "Book it or let it go" in body
    assert "<html" not in body  # the part, not the page
    assert session_client(acme, None).get("/waitlist/live/").status_code == 302  # sign in

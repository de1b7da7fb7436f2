"""Celery tasks and websockets land in the clinic they came from (real worker, real Redis)."""

import asyncio

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import Group
from django_tenants.utils import schema_context

from accounts.tasks import sync_roles_task
from clinic.asgi import application
from realtime.groups import group_name, publish
from tests.fixtures import in_clinic, run_async


@pytest.mark.usefixtures("celery_worker")
def test_task_queued_from_a_clinic_runs_in_that_clinic(committed_acme, committed_globex):
    for clinic in (committed_acme, committed_globex):
        with in_clinic(clinic):
            Group.objects.filter(name="biller").delete()
    with in_clinic(committed_acme):
        result = sync_roles_task.delay()
    counts = result.get(timeout=30)
    assert counts["clinic_admin"] > 0
    with in_clinic(committed_acme):
        assert Group.objects.filter(name="biller").exists()
    with in_clinic(committed_globex):
        assert not Group.objects.filter(name="biller").exists()
        sync_roles_task.delay().get(timeout=30)
        assert Group.objects.filter(name="biller").exists()


@pytest.mark.usefixtures("celery_worker")
def test_task_queued_outside_a_clinic_is_refused(committed):
    with schema_context("public"):
        result = sync_roles_task.delay()
    with pytest.raises(Exception, match="must run inside a clinic"):
        result.get(timeout=30)


def _pages(host: str) -> str:
    """The origin of the clinic's own pages for a socket opened on `host`: without a token,
    a socket opens only from there (realtime.tenancy.ClinicOriginValidator)."""
    return f"http://{host.split(':')[0]}:{settings.CLINIC_HTTP_PORT}"


async def _ping(host: str, origin: str | None = None) -> tuple[bool, object]:
    headers = [(b"host", host.encode())]
    headers.append((b"origin", (origin or _pages(host)).encode()))
    communicator = WebsocketCommunicator(application, "/ws/ping/", headers=headers)
    connected, code = await communicator.connect(timeout=10)
    if not connected:
        return False, code
    message = await communicator.receive_json_from(timeout=10)
    if message.get("type") != "pong":
        await communicator.disconnect()
        return False, message
    await communicator.disconnect()
    return True, message


def _ws(coro):
    return run_async(coro)


def test_websocket_ping_answers_with_the_host_clinic(committed_acme, committed_globex):
    with in_clinic(committed_acme):
        Group.objects.create(name="only-in-acme")
    ok_a, acme = _ws(_ping("acme.localhost:8001"))
    ok_g, globex = _ws(_ping("globex.localhost"))
    assert ok_a and ok_g
    assert acme["clinic"] == "Acme Therapy" and acme["schema"] == "acme"
    assert globex["clinic"] == "Globex Cardiology" and globex["schema"] == "globex"
    # The database read inside the consumer ran in the socket's clinic.
    assert "only-in-acme" in acme["roles"] and "only-in-acme" not in globex["roles"]
    assert acme["group"].startswith("acme.") and globex["group"].startswith("globex.")


def test_websocket_on_unknown_host_is_closed_with_4404(committed):
    async def run():
        communicator = WebsocketCommunicator(
            application,
            "/ws/ping/",
            headers=[
                (b"host", b"nobody.localhost"),
                (b"origin", _pages("nobody.localhost").encode()),
            ],
        )
        connected, _ = await communicator.connect(timeout=10)
        closed = await communicator.receive_output(timeout=10)
        return connected, closed

    connected, closed = _ws(run())
    assert connected
    assert closed == {"type": "websocket.close", "code": 4404}


def test_websocket_on_suspended_clinic_is_closed_with_4403(committed_acme):
    from tenants.services import clinic_suspend

    clinic_suspend(clinic=committed_acme)

    async def run():
        communicator = WebsocketCommunicator(
            application,
            "/ws/ping/",
            headers=[(b"host", b"acme.localhost"), (b"origin", _pages("acme.localhost").encode())],
        )
        await communicator.connect(timeout=10)
        return await communicator.receive_output(timeout=10)

    try:
        assert _ws(run()) == {"type": "websocket.close", "code": 4403}
    finally:
        from tenants.services import clinic_reactivate

        clinic_reactivate(clinic=committed_acme)


def test_websocket_from_a_foreign_origin_is_refused(committed):
    ok, _ = _ws(_ping("acme.localhost", origin="http://evil.example"))
    assert not ok


def test_publish_reaches_only_the_clinic_group(committed_acme, committed_globex):
    """Same logical group in two clinics: an event published in acme reaches only acme."""

    async def run():
        sockets = {}
        for slug in ("acme", "globex"):
            communicator = WebsocketCommunicator(
                application,
                "/ws/ping/",
                headers=[
                    (b"host", f"{slug}.localhost".encode()),
                    (b"origin", _pages(f"{slug}.localhost").encode()),
                ],
            )
            await communicator.connect(timeout=10)
            await communicator.receive_json_from(timeout=10)
            sockets[slug] = communicator
        with_schema = group_name("ping", schema="acme")
        await asyncio.get_running_loop().run_in_executor(
            None, publish, with_schema, {"type": "news", "text": "acme only"}
        )
        got = await sockets["acme"].receive_json_from(timeout=10)
        nothing = await sockets["globex"].receive_nothing(timeout=0.5)
        for communicator in sockets.values():
            await communicator.disconnect()
        return got, nothing

    got, nothing = _ws(run())
    assert got == {"type": "news", "text": "acme only"}
    assert nothing


async def _unknown_path(host: str, path: str) -> tuple[bool, object, dict]:
    headers = [(b"host", host.encode()), (b"origin", _pages(host).encode())]
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=10)
    closed = await communicator.receive_output(timeout=10) if connected else {}
    await communicator.wait()
    return connected, code, closed


@pytest.mark.parametrize("path", ["/ws/no-such-thing/", "/ws/jobs/not-a-uuid/", "/%00"])
def test_websocket_path_with_no_route_is_closed_with_4404(committed_acme, path):
    connected, _, closed = _ws(_unknown_path("acme.localhost", path))
    assert connected
    assert closed == {"type": "websocket.close", "code": 4404}

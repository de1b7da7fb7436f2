"""Sockets that stay open across a Redis fault catch up once it is over: an event published
while the channel layer's Redis hangs is lost to them (the publish fails open), so the process
tells the event's groups `resync` as soon as Redis answers again (realtime.groups), and each
socket reads what it shows again. Channels' communicator on the real routing, against a Redis
of the test's own that it hangs (SIGSTOP) and resumes."""

import asyncio
import shutil
import tempfile
import threading
import time
from copy import deepcopy
from pathlib import Path

import pytest
from django.conf import settings

from clinic.asgi import application
from clinic.resilience import RedisUnavailableError, redis_breaker
from realtime import groups
from realtime.groups import RESYNC, group_name, publish
from scheduling.models import SmartBookingJob
from scheduling.smart.job import smart_job_cancel
from scheduling.tests import factories as f
from tests.faults import PrivateRedis
from tests.fixtures import host_of, in_clinic, run_async, session_client


@pytest.fixture
def hung_redis(settings):
    """The channel layer on a private Redis the test may hang (for less than the layer's
    15 s read timeout: a longer hang ends the sockets' receive, so they close and the pages
    reconnect); publishes give up after 0.5 s and the resync is retried every 0.2 s."""
    workdir = Path(tempfile.mkdtemp(prefix="clinic-resync-"))
    redis = PrivateRedis(workdir)
    redis.start()
    layers = deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"][0]["address"] = redis.url
    settings.CHANNEL_LAYERS = layers
    settings.REALTIME_PUBLISH_TIMEOUT = 0.5
    settings.REALTIME_RESYNC_RETRY_SECONDS = 0.2
    redis_breaker.reset()
    try:
        yield redis
    finally:
        redis.stop()
        redis_breaker.reset()
        shutil.rmtree(workdir, ignore_errors=True)


def _headers(clinic, client) -> list[tuple[bytes, bytes]]:
    host = host_of(clinic)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    return [
        (b"host", host.encode()),
        (b"origin", f"http://{host.split(':')[0]}:8000".encode()),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]


def test_open_sockets_hear_resync_after_a_redis_hang_lost_their_events(
    hung_redis, committed_acme, make_user
):
    from channels.testing import WebsocketCommunicator

    acme = committed_acme
    desk = session_client(acme, make_user(acme, "front_desk"))
    patient_user = make_user(acme, "patient")
    with in_clinic(acme):
        job = SmartBookingJob.objects.create(patient=f.patient(user=patient_user), request={})
    patient = session_client(acme, patient_user)
    lost: list[BaseException] = []

    def lose_events() -> None:
        """While Redis hangs: the board's event fails open, and the job is cancelled (its
        event fails too: the change is committed all the same)."""
        with in_clinic(acme):
            try:
                publish(group_name("schedule"), {"type": "appointment.booked"})
            except RedisUnavailableError as error:
                lost.append(error)
            assert smart_job_cancel(job=job)

    async def scenario():
        board = WebsocketCommunicator(application, "/ws/schedule/", headers=_headers(acme, desk))
        watch = WebsocketCommunicator(
            application, f"/ws/jobs/{job.pk}/", headers=_headers(acme, patient)
        )
        for socket in (board, watch):
            connected, _ = await socket.connect(timeout=10)
            assert connected
        assert (await board.receive_json_from(timeout=10))["type"] == "ready"
        assert (await watch.receive_json_from(timeout=10))["status"] == "queued"

        hung_redis.hang()
        thread = threading.Thread(target=lose_events)
        thread.start()
        await asyncio.to_thread(thread.join, 30)
        assert groups._missed.pending(), "the lost events' groups are remembered"
        await asyncio.sleep(1)  # a while longer hung: the retries fail and go on
        hung_redis.resume()
        started = time.monotonic()
        heard_by_board = await board.receive_json_from(timeout=15)
        heard_by_watch = await watch.receive_json_from(timeout=15)
        took = time.monotonic() - started
        await board.disconnect()
        await watch.disconnect()
        return heard_by_board, heard_by_watch, took

    board_heard, watch_heard, took = run_async(scenario())
    assert lost, "the publish while Redis hung failed open"
    assert board_heard == RESYNC  # the board re-renders
    assert watch_heard["status"] == "cancelled"  # the job's socket sends the job as it is now
    assert "worker_id" not in watch_heard  # still the patient's JSON
    assert not groups._missed.pending()
    print(f"\nresync heard {took:.2f} s after Redis resumed")

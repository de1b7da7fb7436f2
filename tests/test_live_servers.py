"""The live-server fixture (tests/live.py) that browser tests build on: each clinic's host is
served over HTTP and websockets from the test database."""

import asyncio
import http.client
import json
import socket
import time

from websockets.sync.client import connect

from tests.fixtures import run_async


def _get(port: int, host: str, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_each_clinic_is_served_over_http_and_websockets(live_servers, committed):
    assert set(live_servers.base_urls) == {"acme", "globex"}
    for slug, name in (("acme", "Acme Therapy"), ("globex", "Globex Cardiology")):
        status, body = _get(live_servers.http_port, live_servers.host(slug), "/")
        assert status == 200 and name in body
        host = f"{slug}.localhost"
        with connect(
            f"ws://{host}:{live_servers.ws_port}/ws/ping/",
            sock=socket.create_connection(("127.0.0.1", live_servers.ws_port)),
            origin=live_servers.url(slug),
            open_timeout=10,
        ) as websocket:
            pong = json.loads(websocket.recv(timeout=10))
        assert pong["clinic"] == name and pong["schema"] == slug


def test_run_async_outlasts_a_task_that_swallows_a_cancellation():
    """A consumer's Redis read can swallow one cancellation (redis/redis-py#2028); asyncio.run
    then waits for it forever. run_async cancels again until it stops."""
    cancellations = []

    async def stubborn():
        while len(cancellations) < 2:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancellations.append(time.monotonic())  # the first is swallowed

    async def main():
        asyncio.get_running_loop().create_task(stubborn())
        await asyncio.sleep(0)
        return "answer"

    started = time.monotonic()
    assert run_async(main()) == "answer"
    assert len(cancellations) == 2 and time.monotonic() - started < 3

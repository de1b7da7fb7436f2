"""`realtime.publish` sends through one long-lived event loop per process (so channels_redis
keeps its Redis connections): events from many threads at once, and from a forked child
process, all arrive (real Redis channel layer)."""

import multiprocessing
import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from realtime.groups import publish


async def _receive(layer, channel: str, count: int) -> list[dict]:
    return [(await layer.receive(channel))["event"] for _ in range(count)]


def _listen(group: str) -> tuple:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)
    return layer, channel


def test_publish_from_many_threads_delivers_every_event():
    layer, channel = _listen("tests.publish.threads")
    threads = [
        threading.Thread(target=publish, args=("tests.publish.threads", {"n": n}))
        for n in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    received = async_to_sync(_receive)(layer, channel, 16)
    assert sorted(event["n"] for event in received) == list(range(16))


def test_publish_works_in_a_forked_child():
    layer, channel = _listen("tests.publish.fork")
    publish("tests.publish.fork", {"from": "parent"})  # the parent's loop exists before the fork
    child = multiprocessing.get_context("fork").Process(
        target=publish, args=("tests.publish.fork", {"from": "child"})
    )
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0
    received = async_to_sync(_receive)(layer, channel, 2)
    assert sorted(event["from"] for event in received) == ["child", "parent"]

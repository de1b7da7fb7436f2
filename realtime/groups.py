"""Channel group names and the one `publish()` every app uses to push events."""

import re

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection

_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")


def group_name(*parts: object, schema: str | None = None) -> str:
    """`<schema>.<part>.<part>`: every group belongs to one clinic, so no clinic can join
    another's group by guessing an id."""
    schema = schema or connection.schema_name
    name = ".".join([schema, *(_UNSAFE.sub("-", str(part)) for part in parts)])
    return name[:99]


def publish(group: str, event: dict) -> None:
    """Send `event` (a JSON-able dict) to every socket in `group`.

    Call it from `transaction.on_commit` so nobody hears of a change that was rolled back.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(group, {"type": "event.forward", "event": event})

"""Tenant safety for websockets.

Websocket connections bypass TenantMainMiddleware, and consumers share database connections
through a thread pool that does not carry the schema. So the clinic is resolved from the
Host header once, kept in the scope, and every database call from a consumer goes through
`clinic_database_sync_to_async`, which sets the schema inside the worker thread itself.
"""

import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django_tenants.utils import schema_context

from tenants.models import Clinic
from tenants.selectors import clinic_for_host, hostname_normalize

P = ParamSpec("P")
R = TypeVar("R")

CLOSE_UNKNOWN_CLINIC = 4404
CLOSE_SUSPENDED = 4403


def clinic_database_sync_to_async(
    fn: Callable[..., R],
) -> Callable[..., Awaitable[R]]:
    """`fn(clinic, *args)` runs in a thread with the connection set to `clinic`'s schema."""

    @functools.wraps(fn)
    def run(clinic: Clinic, *args: Any, **kwargs: Any) -> R:
        with schema_context(clinic.schema_name):
            return fn(clinic, *args, **kwargs)

    return database_sync_to_async(run)


@database_sync_to_async
def _clinic_for_host(host: str) -> Clinic | None:
    return clinic_for_host(hostname_normalize(host))


class ClinicWebsocketMiddleware:
    """Puts `clinic` (resolved from the Host header) into the scope, or closes the socket:
    4404 for an unknown host, 4403 for a suspended clinic."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers", []))
        host = headers.get(b"host", b"").decode("latin-1")
        clinic = await _clinic_for_host(host) if host else None
        if clinic is None or clinic.is_platform or not clinic.is_active:
            code = CLOSE_SUSPENDED if clinic is not None and not clinic.is_active else None
            return await _refuse(receive, send, code or CLOSE_UNKNOWN_CLINIC)
        scope = dict(scope, clinic=clinic, schema_name=clinic.schema_name)
        return await self.app(scope, receive, send)


async def _refuse(receive, send, code: int) -> None:
    # Accept then close with an application code, so the client can tell why.
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": code})

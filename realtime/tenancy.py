"""Tenant safety for websockets.

Websocket connections bypass TenantMainMiddleware, and consumers share database connections
through a thread pool that does not carry the schema. So the clinic is resolved from the
Host header once, kept in the scope, and every database call from a consumer goes through
`clinic_database_sync_to_async`, which sets the schema inside the worker thread itself.
The Origin rules depend on how a socket authenticates (`ClinicOriginValidator`).
"""

import functools
from collections.abc import Awaitable, Callable
from importlib import import_module
from typing import Any, ParamSpec, TypeVar

from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.models import AnonymousUser
from django.utils.crypto import constant_time_compare
from django_tenants.utils import schema_context

from accounts.auth import ClinicJWTAuthentication
from accounts.sessions import staff_session_expired
from accounts.two_factor import session_verified
from clinic.permissions import is_api_client
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


def _cookie(headers: dict, name: str) -> str | None:
    from http.cookies import SimpleCookie

    raw = headers.get(b"cookie", b"").decode("latin-1")
    morsel = SimpleCookie(raw).get(name) if raw else None
    return morsel.value if morsel else None


def _token_from(scope: dict, headers: dict) -> tuple[str | None, str | None]:
    """A JWT from `?token=` or from `Sec-WebSocket-Protocol: bearer, <token>`; returns the
    token and the subprotocol to accept (browsers require the echo)."""
    from urllib.parse import parse_qs

    query = parse_qs(scope.get("query_string", b"").decode())
    if query.get("token"):
        return query["token"][0], None
    protocols = [p.strip() for p in headers.get(b"sec-websocket-protocol", b"").decode().split(",")]
    if len(protocols) >= 2 and protocols[0].lower() in ("bearer", "access_token"):
        return protocols[1], protocols[0]
    return None, None


@database_sync_to_async
def _user_for(clinic: Clinic, token: str | None, session_key: str | None):
    """The user of this clinic behind a JWT or a session cookie (resolved in its schema)."""
    with schema_context(clinic.schema_name):
        if token:
            auth = ClinicJWTAuthentication()
            try:
                user = auth.get_user(auth.get_validated_token(token.encode()))
            except Exception:  # noqa: BLE001  (any invalid token is simply no user)
                return AnonymousUser()
            # API clients use the REST API only (nothing would close their sockets on revoke)
            return AnonymousUser() if is_api_client(user) else user
        if session_key:
            store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
            user_id = store.get(SESSION_KEY)
            if user_id and store.get(BACKEND_SESSION_KEY):
                user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
                if (
                    user
                    and constant_time_compare(
                        store.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()
                    )
                    and staff_session_expired(store, user) is None  # read here, never saved
                    and session_verified(store, user)  # the code, when two-factor is required
                ):
                    return user
    return AnonymousUser()


class ClinicAuthMiddleware:
    """Puts `user` (of the scope's clinic) into the scope, from a JWT (query parameter or
    subprotocol) or the session cookie. Must run inside ClinicWebsocketMiddleware.

    A socket that offers a token is authenticated by the token alone, never by its cookie:
    ClinicOriginValidator lets token sockets skip the Origin check on that promise."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers", []))
        token, subprotocol = _token_from(scope, headers)
        session_key = _cookie(headers, settings.SESSION_COOKIE_NAME)
        user = await _user_for(scope["clinic"], token, session_key)
        scope = dict(scope, user=user, accepted_subprotocol=subprotocol)
        return await self.app(scope, receive, send)


def _origin(headers: dict) -> tuple[str, str, int] | None:
    """(scheme, hostname, port) of the Origin header; None when absent, "null" or malformed."""
    from urllib.parse import urlsplit

    try:
        origin = urlsplit(headers.get(b"origin", b"").decode("latin-1").strip().lower())
        port = origin.port or {"http": 80, "https": 443}.get(origin.scheme)
    except ValueError:
        return None
    if not origin.hostname or port is None:
        return None
    return origin.scheme, origin.hostname, port


def clinic_origins(host: str) -> frozenset[tuple[str, str, int]]:
    """The origins of the clinic's own pages for a socket opened on `host` (its Host header):
    plain HTTP on CLINIC_HTTP_PORT (a local run, where websockets have a port of their own), or
    HTTPS behind the proxy. A sibling clinic's host is another origin."""
    hostname = hostname_normalize(host)
    return frozenset({("http", hostname, settings.CLINIC_HTTP_PORT), ("https", hostname, 443)})


class ClinicOriginValidator:
    """Refuses (HTTP 403 at the handshake) websockets that another site could open in a
    signed-in user's browser, by the credential the socket offers:

    - a JWT (`?token=` or `Sec-WebSocket-Protocol: bearer, <token>`): no Origin check. A browser
      never adds a token by itself, so no other site can ride on one, and an integrator's
      server-side client sends no Origin at all. A socket that offers a token is authenticated
      by the token alone (ClinicAuthMiddleware ignores its cookie), so `?token=junk` does not
      get a cookie past this check.
    - the session cookie, or no credential at all: the browser attaches the cookie whichever
      site opens the socket, so the Origin must be the clinic's own pages (`clinic_origins`); a
      foreign site, a sibling clinic's host or a missing Origin is refused. An anonymous socket
      follows the same rule (it was checked against ALLOWED_HOSTS, which lets every clinic's
      pages open sockets on every other).
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers", []))
        if _token_from(scope, headers)[0]:
            return await self.app(scope, receive, send)
        host = headers.get(b"host", b"").decode("latin-1")
        if host and _origin(headers) in clinic_origins(host):
            return await self.app(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)

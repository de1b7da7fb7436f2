"""Who may open a websocket from where (issue 15 b), against the real daphne: a socket signed
in by the session cookie only from the clinic's own pages (cross-site websocket hijacking);
a socket that authenticates with a JWT from anywhere, with or without an Origin."""

import pytest
from websockets.exceptions import InvalidStatus

from .sockets import access_token, frames_until_closed, next_frame, open_socket, session_cookie


def refused_at_handshake(live_servers, slug, path, **options) -> int | None:
    """The HTTP status of a refused handshake, or None when the socket opened."""
    try:
        with open_socket(live_servers, slug, path, **options):
            return None
    except InvalidStatus as refused:
        return refused.response.status_code


@pytest.fixture
def desk_cookie(live_servers, committed_acme, make_user) -> str:
    return session_cookie(committed_acme, make_user(committed_acme, "front_desk"))


def test_a_cookie_socket_opens_only_from_the_clinics_own_pages(live_servers, desk_cookie):
    http_port = live_servers.http_port
    own = live_servers.url("acme")  # http://acme.localhost:<the pages' port>
    with open_socket(live_servers, "acme", "/ws/schedule/", origin=own, cookie=desk_cookie) as ws:
        assert next_frame(ws) == {"type": "ready", "scope": "clinic"}
    behind_the_proxy = "https://acme.localhost"
    assert refused_at_handshake(
        live_servers, "acme", "/ws/schedule/", origin=behind_the_proxy, cookie=desk_cookie
    ) is None  # fmt: skip
    for origin in (
        "http://evil.example",
        f"http://globex.localhost:{http_port}",  # a sibling clinic's pages
        "https://globex.localhost",
        f"http://acme.localhost.evil.example:{http_port}",
        f"http://acme.localhost:{live_servers.ws_port}",  # not where the pages are served
        f"http://localhost:{http_port}",  # the platform
        "null",
        None,  # no Origin at all
    ):
        status = refused_at_handshake(
            live_servers, "acme", "/ws/schedule/", origin=origin, cookie=desk_cookie
        )
        assert status == 403, origin


def test_a_token_socket_opens_from_anywhere_and_a_junk_token_unlocks_no_cookie(
    live_servers, committed_acme, make_user, desk_cookie
):
    token = access_token(committed_acme, make_user(committed_acme, "front_desk"))
    for origin in (None, "http://evil.example", "http://globex.localhost"):
        for options in ({"path": f"/ws/schedule/?token={token}"},
                        {"path": "/ws/schedule/", "subprotocols": ["bearer", token]}):  # fmt: skip
            with open_socket(live_servers, "acme", origin=origin, **options) as websocket:
                assert next_frame(websocket) == {"type": "ready", "scope": "clinic"}, origin
                assert websocket.subprotocol == ("bearer" if "subprotocols" in options else None)
    # A foreign page that adds a token of its own gets past the Origin check, but then the
    # socket is authenticated by that token alone: the signed-in user's cookie counts for nothing.
    with open_socket(
        live_servers, "acme", "/ws/schedule/?token=junk",
        origin="http://evil.example", cookie=desk_cookie,
    ) as junk:  # fmt: skip
        frames, code = frames_until_closed(junk)
    assert (frames, code) == ([], 4401)


def test_an_anonymous_socket_opens_only_from_the_clinics_own_pages(live_servers, committed):
    def ping(origin):
        return refused_at_handshake(live_servers, "acme", "/ws/ping/", origin=origin)

    assert ping(live_servers.url("acme")) is None
    assert ping("https://acme.localhost") is None  # behind the proxy
    assert ping("http://evil.example") == 403
    assert ping(live_servers.url("globex")) == 403  # a sibling clinic's pages (issue 16)
    assert ping(f"http://localhost:{live_servers.http_port}") == 403  # the platform
    assert ping(None) == 403

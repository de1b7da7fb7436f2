"""Absolute websocket links, for the API answers and pages that name a socket to follow."""

from django.conf import settings
from django.http import HttpRequest


def websocket_url(request: HttpRequest, path: str) -> str:
    """Absolute: locally the websocket server listens on its own port (CLINIC_WS_PORT); behind
    a proxy (https) both share the host."""
    host = request.get_host().split(":")[0]
    if request.is_secure():
        return f"wss://{host}{path}"
    return f"ws://{host}:{settings.CLINIC_WS_PORT}{path}"

"""Absolute websocket links, for the API answers and pages that name a socket to follow, and the
Content Security Policy that lets those pages open them."""

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase


def websocket_url(request: HttpRequest, path: str) -> str:
    """Absolute: locally the websocket server listens on its own port (CLINIC_WS_PORT); behind
    a proxy (https) both share the host."""
    host = request.get_host().split(":")[0]
    if request.is_secure():
        return f"wss://{host}{path}"
    return f"ws://{host}:{settings.CLINIC_WS_PORT}{path}"


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's policy (settings.CONTENT_SECURITY_POLICY), with this host's websocket origin
    added to connect-src: a page may open sockets on its own clinic's websocket server only
    (`ws://<clinic host>:<CLINIC_WS_PORT>` locally; behind the proxy, `wss://<clinic host>`,
    which 'self' also covers), never on a sibling clinic's."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if report_only:  # no report-only policy here
            return parts
        try:
            origin = websocket_url(request, "")
        except DisallowedHost:  # answered 400 already; no socket to allow
            return parts
        update = dict(parts.update or {})
        update["connect-src"] = [*update.get("connect-src", ()), origin]
        parts.update = update
        return parts

"""Absolute websocket links, for the API answers and pages that name a socket to follow, and the
Content Security Policy that lets those pages open them."""

from csp.constants import HEADER
from csp.middleware import CheckableLazyObject, CSPMiddleware, PolicyParts
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase

# What a view may set on its response to change its policy (django-csp's decorators).
_PER_RESPONSE = tuple(
    f"_csp_{what}{ro}" for what in ("exempt", "config", "update", "replace") for ro in ("", "_ro")
)
# The policy of an answer that used no nonce and changes nothing, per websocket origin.
_PLAIN_POLICIES: dict[str, str] = {}


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

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        """django-csp builds the policy string twice per response (the policy, then an empty
        report-only one). An answer that used no nonce and changes nothing (every API answer)
        gets its host's policy as built the first time."""
        if (
            getattr(request, "_csp_nonce", None) is not None
            or HEADER in response
            or any(hasattr(response, name) for name in _PER_RESPONSE)
            or settings.DEBUG
            or getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)
            or settings.CONTENT_SECURITY_POLICY.get("EXCLUDE_URL_PREFIXES")
        ):
            return super().process_response(request, response)
        try:
            origin = websocket_url(request, "")
        except DisallowedHost:
            return super().process_response(request, response)
        policy = _PLAIN_POLICIES.get(origin)
        if policy is None:
            response = super().process_response(request, response)
            if HEADER in response and len(_PLAIN_POLICIES) < 10_000:  # one per clinic host
                _PLAIN_POLICIES[origin] = response[HEADER]
            return response
        response[HEADER] = policy
        # as django-csp does: a nonce asked for after the header is written is an error
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response


@receiver(setting_changed)
def _policy_changed(setting: str, **kwargs) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY") or setting == "CLINIC_WS_PORT":
        _PLAIN_POLICIES.clear()

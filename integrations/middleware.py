"""Every API answer is metered (usage.count: summed in the process, no round trip) and an API
client's carries its rate limit's headers."""

from django.http import HttpRequest, HttpResponse

import usage
from clinic.permissions import PATIENT


def api_subject(user) -> str:
    """Who made an API call, for usage: the client, or the kind of user."""
    client_id = getattr(user, "api_client_id", None)
    if client_id:
        return f"client:{client_id}"
    if user is None or not user.is_authenticated:
        return "user:anonymous"
    roles = user.__dict__.get("roles")  # read by the permission check; not queried here
    if roles is None:
        return "user:signed-in"
    return "user:patient" if roles == {PATIENT} else "user:staff"


def api_group(request: HttpRequest) -> str:
    """The endpoint group: the first segment after /api/v1/ of a route that exists."""
    if request.resolver_match is None:
        return "unmatched"
    parts = request.path.split("/")
    return parts[3] if len(parts) > 3 and parts[3] else "root"


class ApiUsageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith("/api/v1/"):
            return response
        limit = getattr(request, "ratelimit", None)
        if limit is not None:
            response["RateLimit-Limit"], response["RateLimit-Remaining"] = limit[0], limit[1]
            response["RateLimit-Reset"] = limit[2]
        subject = api_subject(getattr(request, "user", None))
        usage.count(usage.API_CALL, subject=subject, group=api_group(request))
        return response

"""JSON log lines that name their request (issue 21, part 2).

Every log line of a web process or a worker is one JSON object (python-json-logger, LOGGING in
clinic/settings.py) carrying `request_id`: the id the audit trail gives each request
(`X-Request-ID` kept from the client or proxy, or made; echoed on the response, audit/), held
in a context variable while the request runs. A task queued during a request carries the id in
its message headers (`request_id`), so the worker's lines of that task name it too.

`RequestLogMiddleware` writes one line per request on the `clinic.requests` logger: request id,
clinic (schema), user or API client, route, method, status and duration.
"""

import contextvars
import logging
import time

from django.http import HttpRequest, HttpResponse

from .tenancy import tenant_connection

REQUEST_ID_HEADER_NAME = "request_id"  # the Celery message header
current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "clinic_request_id", default=""
)

requests_log = logging.getLogger("clinic.requests")
tasks_log = logging.getLogger("clinic.tasks")


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (and the clinic's schema) to every record: JSON lines name them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = current_request_id.get()
        if not getattr(record, "clinic", ""):
            record.clinic = getattr(tenant_connection, "schema_name", "") or ""
        return True


def _who(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return {"user": None}
    client = getattr(user, "api_client_id", None)
    out = {"user": user.pk}
    if client:
        out["api_client"] = client
    return out


def _route(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return ""
    return match.view_name or match.route or ""  # the route's name: "appointment-list"


class RequestLogMiddleware:
    """One `clinic.requests` line per request, and the request id in a context variable for
    every line the request logs (and for the tasks it queues). Right after the audit
    middleware, which gives the request its id."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        trail = getattr(request, "audit_trail", None)
        request_id = getattr(trail, "request_id", "") or ""
        token = current_request_id.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            requests_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "clinic": getattr(getattr(request, "tenant", None), "schema_name", ""),
                    **_who(request),
                    "route": _route(request),
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            return response
        finally:
            current_request_id.reset(token)

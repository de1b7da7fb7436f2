"""Every request gets an id and an audit trail; the trail is written after the response."""

from django.http import HttpRequest, HttpResponse

from .services import REQUEST_ID_HEADER, RequestTrail, request_id_for, trail_flush


class AuditMiddleware:
    """Gives the request its id (`X-Request-ID`, kept from a proxy or made here, sent back on
    the response) and an empty `RequestTrail` that `audit.services.record` fills.

    The trail is written when the server closes the response, after its last byte was sent
    (granian and Django's test client call `close()`; Django then fires `request_finished`,
    which may close the connection, so the write runs first, among the response's closers).
    No statement on the request's path: its events go to the process's batch writer (nothing
    for a request that recorded nothing)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        trail = RequestTrail(request_id=request_id_for(request))
        request.audit_trail = trail  # type: ignore[attr-defined]  # read by services.trail_of
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = trail.request_id
        response._resource_closers.append(lambda: trail_flush(trail))
        return response

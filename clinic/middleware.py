"""Request middleware of the project itself (the tenant one lives in tenants/)."""

import functools
import logging

from django.db import connections
from django.utils import timezone

from .resilience import is_broken_connection

log = logging.getLogger(__name__)

IDEMPOTENT_READS = ("GET", "HEAD")


class DatabaseRetryMiddleware:
    """A GET or HEAD that met a broken database connection runs once more, on a fresh one.

    After PostgreSQL restarts, a connection opened before (pooled or persistent) fails on its
    first statement even though the server is back; Django's health check and the pool's check
    replace most of them before use, and this catches the rest. The answer was a 503 marked by
    clinic.errors (`database_error`); a read has no effect to repeat, so it is simply served
    again. Writes are never repeated: the client got the 503 with `Retry-After`. First in
    MIDDLEWARE, so the retry runs the whole request again."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        error = getattr(response, "database_error", None)
        if request.method in IDEMPOTENT_READS and is_broken_connection(error):
            log.warning("retrying %s %s on a fresh connection: %s", request.method,
                        request.path, error)  # fmt: skip
            response.close()
            for connection in connections.all(initialized_only=True):
                connection.close_if_unusable_or_obsolete()
            response = self.get_response(request)
        return response


class ReleaseRequestMiddleware:
    """Free what a DRF request allocated as soon as its response is sent.

    DRF ties the view, its request, the response and the serializers' contexts into reference
    cycles (encode/django-rest-framework#7250), so reference counting frees none of a request's
    objects: they wait for the cyclic garbage collector, whose passes over tens of thousands of
    them pause every thread of the worker (bench/README.md). When the server closes
    the response (after sending it), the contexts, the view and the DRF request are emptied,
    which leaves only small serializer-to-field cycles for the collector. Nothing may use the
    view or the DRF request after that (Django's request and the response are left as they
    are)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if getattr(response, "renderer_context", None):
            response._resource_closers.append(functools.partial(_release, response))
        return response


def _release(response) -> None:
    context = response.renderer_context
    serializer = getattr(getattr(response, "data", None), "serializer", None)
    if serializer is not None:
        serializer._context = {}
    # Serializers of lists (and any kept by the view's code) still hold a context naming the
    # view and the request: emptied, those hold nothing else.
    for shell in (context.get("view"), context.get("request")):
        if shell is not None:
            shell.__dict__.clear()
    context.clear()


class TimezoneResetMiddleware:
    """Every request starts and ends in the default zone (UTC).

    Views that show times in a zone the client asked for (`?tz=`) activate it for their
    rendering; the activation is thread-local, and a WSGI thread serves many requests, so
    without this the next request on the thread (another client's) was rendered in that zone.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()

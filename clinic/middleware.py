"""Request middleware of the project itself (the tenant one lives in tenants/)."""

import functools

from django.utils import timezone


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

"""Request middleware of the project itself (the tenant one lives in tenants/)."""

from django.utils import timezone


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

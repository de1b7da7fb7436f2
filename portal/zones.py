"""The viewer's time zone: every time on the patient pages is shown in it.

Chosen in this order: a zone the patient picked (`?tz=`, remembered in the session), the
browser's zone (portal.js writes it to a cookie on the first page), the patient record's zone,
the clinic's zone. Pages that show times reload once when the browser's zone first becomes
known and differs from the one they were rendered in.
"""

import zoneinfo
from functools import cache, wraps
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from django.http import HttpRequest
from django.utils import timezone

COOKIE = "portal_tz"
SESSION_KEY = "portal_tz"

# Offered in the zone picker (with the viewer's current zone and the clinic's, whatever they are).
COMMON_ZONES = (
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Phoenix",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Halifax",
    "America/Puerto_Rico",
    "America/Mexico_City",
    "America/Bogota",
    "America/Sao_Paulo",
    "America/Argentina/Buenos_Aires",
    "Atlantic/Reykjavik",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Europe/Madrid",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Rome",
    "Europe/Warsaw",
    "Europe/Athens",
    "Europe/Helsinki",
    "Europe/Istanbul",
    "Europe/Moscow",
    "Africa/Lagos",
    "Africa/Cairo",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Bangkok",
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Seoul",
    "Asia/Tokyo",
    "Australia/Perth",
    "Australia/Sydney",
    "Pacific/Auckland",
    "UTC",
)


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def zone_valid(name: str | None) -> bool:
    return bool(name) and name in _zones()


def viewer_zone(request: HttpRequest) -> tuple[ZoneInfo, str]:
    """(zone, source) where source is "chosen", "browser" or "default"."""
    picked = request.GET.get("tz")
    if zone_valid(picked):
        request.session[SESSION_KEY] = picked
        return ZoneInfo(picked), "chosen"
    chosen = request.session.get(SESSION_KEY)
    if zone_valid(chosen):
        return ZoneInfo(chosen), "chosen"
    browser = unquote(request.COOKIES.get(COOKIE, ""))  # portal.js URI-encodes the "/"
    if zone_valid(browser):
        return ZoneInfo(browser), "browser"
    patient = getattr(request, "patient", None)
    if patient is not None and zone_valid(patient.timezone):
        return ZoneInfo(patient.timezone), "default"
    tenant = getattr(request, "tenant", None)
    return ZoneInfo(getattr(tenant, "timezone", None) or "UTC"), "default"


def zone_choices(*current: str) -> list[str]:
    return sorted({*COMMON_ZONES, *(name for name in current if zone_valid(name))})


def in_viewer_zone(view):
    """Render the view with the viewer's zone active (Django's `date`/`time` filters use it)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        zone, source = viewer_zone(request)
        request.viewer_zone, request.viewer_zone_source = zone, source
        timezone.activate(zone)
        try:
            return view(request, *args, **kwargs)
        finally:
            timezone.deactivate()

    return wrapper

"""How a clinic writes dates, times and money: the one helper every page, email and statement
goes through (Babel's CLDR data), by the clinic's locale (`ClinicSettings.locale`: en-US writes
"Dec 8, 2026, 10:45 AM", en-IE and en-GB "8 Dec 2026, 10:45") and currency.

A request activates its clinic's style (`StyleMiddleware`, one query of the settings row); code
without a request (tasks, emails) wraps its rendering in `style_override(style_load())`. Times
are written in the zone given, else in Django's current zone (the viewer's on the patient
pages, the clinic's in the admin). A visit's own zone is `visit_zone`: an in-person visit is
written in its location's zone, a video visit in the viewer's.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from asgiref.local import Local
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation

# The clinic's locale -> Babel's (CLDR) and Django's (its admin's date widgets and list dates).
LOCALES = {"en-US": "en_US", "en-IE": "en_IE", "en-GB": "en_GB"}
DJANGO_LANGUAGES = {"en-US": "en", "en-IE": "en-ie", "en-GB": "en-gb"}
DEFAULT_LOCALE = "en-US"
DEFAULT_CURRENCY = "USD"


@dataclass(frozen=True)
class Style:
    locale: str = DEFAULT_LOCALE
    currency: str = DEFAULT_CURRENCY

    @property
    def babel_locale(self) -> str:
        return LOCALES.get(self.locale, LOCALES[DEFAULT_LOCALE])


_active = Local()


def style_load() -> Style:
    """The current clinic's style, from its settings row (the schema must be set). Raw SQL:
    every page's request runs it (`StyleMiddleware`), and building it through the ORM cost
    more CPU than the whole rest of a plain page's middleware (bench/results/
    2026-12-06-request-path.md)."""
    from .models import ClinicSettings

    meta = ClinicSettings._meta
    column = {field.name: field.column for field in meta.concrete_fields}
    columns = f"{column['locale']}, {column['currency']}"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {meta.db_table} WHERE id = 1")
        row = cursor.fetchone()
    return Style(locale=row[0], currency=row[1]) if row else Style()


def style_active() -> Style:
    return getattr(_active, "style", None) or Style()


def style_current() -> Style:
    """The active style, else the current clinic's (read from its settings row): for messages
    written where no page set one (API problems, smart-booking results)."""
    active = getattr(_active, "style", None)
    return active if active is not None else style_load()


@contextmanager
def style_override(style: Style) -> Iterator[Style]:
    previous = getattr(_active, "style", None)
    _active.style = style
    try:
        yield style
    finally:
        _active.style = previous


def _locale(locale: str | None) -> str:
    if locale is None:
        return style_active().babel_locale
    return LOCALES.get(locale, locale.replace("-", "_"))


def _zone(zone: tzinfo | str | None) -> tzinfo:
    if zone is None or zone == "":
        return timezone.get_current_timezone()
    return ZoneInfo(zone) if isinstance(zone, str) else zone


def _local(value: datetime | date, zone: tzinfo | str | None) -> datetime | date:
    if isinstance(value, datetime):
        return value.astimezone(_zone(zone)) if timezone.is_aware(value) else value
    return value


# --- money --------------------------------------------------------------------------------------


def money_format(amount: Decimal | int | str, *, currency: str, locale: str) -> str:
    """'$1,234.50' (en-US, USD), '€1,234.50' (en-IE, EUR), 'US$1,234.50' (en-IE, USD)."""
    return babel_numbers.format_currency(Decimal(amount), currency, locale=_locale(locale))


# --- dates and times ------------------------------------------------------------------------------
# Styles: "short" 12/8/26 or 08/12/2026, "medium" Dec 8, 2026 or 8 Dec 2026, "long" a full date
# with the weekday; "day" Tue, Dec 8 or Tue 8 Dec; "daynum" Dec 8 or 8 Dec; "weekday" Tue.
_SKELETONS = {"day": "MMMEd", "daynum": "MMMd", "weekday": "EEE", "month": "MMM", "dom": "d"}
_DATE_STYLES = {"short": "short", "medium": "medium", "long": "full"}


def date_format(
    value: date | datetime,
    *,
    style: str = "medium",
    locale: str | None = None,
    zone: tzinfo | str | None = None,
) -> str:
    """A date (a datetime's date in `zone`) in the clinic's order: month-day for en-US,
    day-month for en-IE and en-GB."""
    local = _local(value, zone)
    day = local.date() if isinstance(local, datetime) else local
    if style in _SKELETONS:
        return babel_dates.format_skeleton(_SKELETONS[style], day, locale=_locale(locale))
    return babel_dates.format_date(day, _DATE_STYLES.get(style, style), locale=_locale(locale))


def time_format(
    value: datetime, *, locale: str | None = None, zone: tzinfo | str | None = None
) -> str:
    """'10:45 AM' (en-US), '10:45' (en-IE, en-GB: the 24-hour clock)."""
    local = value.astimezone(_zone(zone)) if timezone.is_aware(value) else value
    text = babel_dates.format_time(local, "short", tzinfo=local.tzinfo, locale=_locale(locale))
    # CLDR puts a narrow no-break space before AM/PM; pages, emails and searches want a space.
    return text.replace("\u202f", " ")


def datetime_format(
    value: datetime,
    *,
    style: str = "medium",
    locale: str | None = None,
    zone: tzinfo | str | None = None,
) -> str:
    """'Dec 8, 2026, 10:45 AM' (en-US), '8 Dec 2026, 10:45' (en-IE)."""
    day = date_format(value, style=style, locale=locale, zone=zone)
    return f"{day}, {time_format(value, locale=locale, zone=zone)}"


def message_date(
    value: date | datetime, *, style: str = "medium", zone: tzinfo | str | None = None
) -> str:
    """A date in a message (a refusal's, a job's reasons) in the clinic's locale, with or
    without a page around it: 'Dec 7, 2026' / '7 Dec 2026'."""
    return date_format(value, style=style, locale=style_current().locale, zone=zone)


def message_time(value: datetime, *, zone: tzinfo | str | None = None) -> str:
    """A time in a message, in the clinic's clock: '2:30 PM' / '14:30'."""
    return time_format(value, locale=style_current().locale, zone=zone)


def zone_label(value: datetime, zone: tzinfo | str | None = None) -> str:
    """'Dublin time (GMT)': the place and the abbreviation in force at that moment."""
    resolved = _zone(zone)
    key = getattr(resolved, "key", str(resolved))
    place = key.rsplit("/", 1)[-1].replace("_", " ")
    abbreviation = value.astimezone(resolved).tzname() or ""
    if key == "UTC":
        return "UTC"
    if abbreviation and not abbreviation.startswith(("+", "-")):
        return f"{place} time ({abbreviation})"
    return f"{place} time"


def place_zone(
    location: Any, *, telehealth: bool = False, viewer: tzinfo | str | None = None
) -> tzinfo:
    """The zone of a time held at `location`: the location's own in person (the patient
    travels there: a Dublin visit reads in Dublin time on a New York laptop), the viewer's by
    video (or without a location)."""
    name: str | None = getattr(location, "timezone", None) if location is not None else None
    if not telehealth and name:
        return ZoneInfo(name)
    return _zone(viewer)


def visit_zone(visit: Any, viewer: tzinfo | str | None = None) -> tzinfo:
    """The zone a visit is written in (`place_zone` of its location and mode)."""
    return place_zone(
        getattr(visit, "location", None),
        telehealth=getattr(visit, "is_telehealth", False),
        viewer=viewer,
    )


# --- the request ---------------------------------------------------------------------------------


class StyleMiddleware:
    """Activates the clinic's style for the request, and its Django locale on pages read in
    English (the admin's dates and date widgets, a date of birth 04/03/1990 in Dublin): a page
    in another language keeps that language's formats."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        clinic = getattr(request, "tenant", None)
        if clinic is None or clinic.is_platform or request.path.startswith(("/api/", "/ws/")):
            return self.get_response(request)
        style = style_load()
        request.clinic_style = style  # type: ignore[attr-defined]
        with style_override(style):
            language = translation.get_language() or "en"
            if language.split("-")[0] == "en":
                with translation.override(DJANGO_LANGUAGES.get(style.locale, "en")):
                    return self.get_response(request)
            return self.get_response(request)

"""Checks for values from outside that the standard library takes badly: time-zone names
(`ZoneInfo` reads any name as a file path, and a 300-character one raises OSError) and dates
at the ends of the calendar (year 1 or 9999: a day added or a zone applied overflows).

Each check answers the message to give the client, or "" when the value is fine: the callers
raise their own error type naming their own field.
"""

import zoneinfo
from datetime import date, datetime
from functools import cache

from django.utils import timezone

# The longest IANA name is 32 characters (America/Argentina/ComodRivadavia).
MAX_ZONE_LENGTH = 64

# Schedule dates (visits, availability, series, time off, hours, smart-booking windows,
# authorizations) within this many years of today; birth dates from FIRST_BIRTH_YEAR.
SCHEDULE_YEARS = 10
FIRST_BIRTH_YEAR = 1900


@cache
def zone_names() -> frozenset[str]:
    """The names of the zone database (read once: it is a directory walk)."""
    return frozenset(zoneinfo.available_timezones())


def zone_error(value: object) -> str:
    """Why `value` is not an IANA zone name ("" when it is one)."""
    if not isinstance(value, str) or not value:
        return "Give an IANA time zone, e.g. Europe/Paris."
    if len(value) > MAX_ZONE_LENGTH:
        return f"A time zone name has at most {MAX_ZONE_LENGTH} characters."
    if value not in zone_names():
        return f"'{value}' is not an IANA time zone."
    return ""


def schedule_date_error(value: date | datetime, *, today: date | None = None) -> str:
    """Why `value` is not a plausible schedule date ("" when it is): more than
    `SCHEDULE_YEARS` years before or after today."""
    day = value.date() if isinstance(value, datetime) else value
    today = today or timezone.now().date()
    first = date(today.year - SCHEDULE_YEARS, 1, 1)
    last = date(today.year + SCHEDULE_YEARS, 12, 31)
    if not first <= day <= last:
        return f"Give a date between {first.isoformat()} and {last.isoformat()}."
    return ""


def plausible_date_error(value: date | datetime, *, today: date | None = None) -> str:
    """Why `value` is no plausible date of a clinic's records ("" when it is): from
    `FIRST_BIRTH_YEAR` (birth dates) to `SCHEDULE_YEARS` years ahead."""
    day = value.date() if isinstance(value, datetime) else value
    today = today or timezone.now().date()
    last = date(today.year + SCHEDULE_YEARS, 12, 31)
    if not date(FIRST_BIRTH_YEAR, 1, 1) <= day <= last:
        return f"Give a date between {FIRST_BIRTH_YEAR}-01-01 and {last.isoformat()}."
    return ""

"""Checks for values from outside that the standard library takes badly: time-zone names
(`ZoneInfo` reads any name as a file path, and a 300-character one raises OSError) and dates
at the ends of the calendar (year 1 or 9999: a day added or a zone applied overflows).

Each check answers the message to give the client, or "" when the value is fine: the callers
raise their own error type naming their own field.
"""

import zoneinfo
from datetime import UTC, date, datetime
from functools import cache

from django.db.models import Q
from django.utils import timezone

# The longest IANA name is 32 characters (America/Argentina/ComodRivadavia).
MAX_ZONE_LENGTH = 64

# Schedule dates (visits, availability, series, time off, hours, smart-booking windows,
# authorizations) within this many years of today; birth dates from FIRST_BIRTH_YEAR.
SCHEDULE_YEARS = 10
FIRST_BIRTH_YEAR = 1900

# What the database itself refuses to store, whatever path writes (CHECK constraints named
# `..._stored_range`): fixed, since a constraint cannot read the clock. The rules about today
# (SCHEDULE_YEARS) stay in Python; these keep a year 1 or 9999 out of every stored date, so
# nothing that reads one later (an admin list, a job, a day added) can overflow.
STORED_FIRST_DAY = date(FIRST_BIRTH_YEAR, 1, 1)
STORED_LAST_DAY = date(2200, 12, 31)
STORED_FIRST_MOMENT = datetime(FIRST_BIRTH_YEAR, 1, 1, tzinfo=UTC)
STORED_END_MOMENT = datetime(2201, 1, 1, tzinfo=UTC)


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


def schedule_window(*, today: date | None = None) -> tuple[date, date]:
    """The first and last days of plausible schedule dates: `SCHEDULE_YEARS` whole years
    either side of today's year."""
    today = today or timezone.now().date()
    return date(today.year - SCHEDULE_YEARS, 1, 1), date(today.year + SCHEDULE_YEARS, 12, 31)


def schedule_date_error(value: date | datetime, *, today: date | None = None) -> str:
    """Why `value` is not a plausible schedule date ("" when it is): more than
    `SCHEDULE_YEARS` years before or after today."""
    day = value.date() if isinstance(value, datetime) else value
    first, last = schedule_window(today=today)
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


def stored_range(*fields: str, moments: bool = False, null: bool = False) -> Q:
    """A CHECK condition: each of `fields` (dates, or with `moments` datetimes) within the
    stored range; with `null`, NULL too."""
    first, last = (
        (STORED_FIRST_MOMENT, STORED_END_MOMENT) if moments else (STORED_FIRST_DAY, STORED_LAST_DAY)
    )
    condition = Q()
    for field in fields:
        bounded = Q(**{f"{field}__gte": first, f"{field}__lte": last})
        condition &= Q(**{f"{field}__isnull": True}) | bounded if null else bounded
    return condition

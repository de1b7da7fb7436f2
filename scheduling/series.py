"""Recurring visits: an RFC 5545 rule expanded on the wall clock of a zone, each occurrence
booked through `services.appointment_book` in one transaction, all or nothing (or, with
`partial`, the free ones), and the series' future visits cancelled together."""

import re
from dataclasses import dataclass
from datetime import MAXYEAR, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from django.db import transaction
from django.utils import timezone

from clinic.errors import ApplicationError
from clinic.inputs import schedule_window
from practice.models import Location, Patient, Practitioner

from .errors import RecurrenceRuleError, SeriesConflictError
from .models import Appointment, AppointmentSeries, AppointmentType
from .services import appointment_book, appointment_cancel

MAX_SERIES_OCCURRENCES = 200
Status = Appointment.Status

# Visits repeat daily at the most; an hourly rule is no series of visits (and costs 24 times
# a daily one to expand). BYEASTER is dateutil's, not RFC 5545's.
FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_PART = re.compile(r"(?:^|;)\s*(FREQ|BYEASTER)\s*=\s*([^;]*)", re.IGNORECASE)

# The Gregorian calendar repeats itself every 400 years: 146,097 days, exactly 20,871 weeks,
# so every date of a cycle falls on the same weekday, in the same week number, leap day
# included, as the same date 400 years on.
CALENDAR_CYCLE_YEARS = 400
CALENDAR_CYCLE = timedelta(days=146_097)


def calendar_shift(last: date) -> timedelta:
    """How far the expansion moves the rule forward, a whole number of calendar cycles, so
    that `last` falls within the calendar's last 400 years (datetime ends in MAXYEAR).

    dateutil looks for the next occurrence until it finds one or the calendar ends: a rule
    with no possible date (30 February) walked every day to the year 9999, 3.6-7.2 s of CPU
    a request. Moved this way, the walk past `last` is under `CALENDAR_CYCLE_YEARS` years
    whatever the rule, and every date, weekday and week number is what it was."""
    return CALENDAR_CYCLE * ((MAXYEAR - last.year) // CALENDAR_CYCLE_YEARS)


def _refuse(detail: str, code: str) -> RecurrenceRuleError:
    return RecurrenceRuleError(detail, code=code)


def series_occurrences(
    *, rrule: str, first_start: datetime, tz: ZoneInfo, today: date | None = None
) -> list[datetime]:
    """Expand an RFC 5545 rule from `first_start` in `tz` (wall-clock times kept across DST).
    Every occurrence falls in the schedule window (`clinic.inputs.schedule_window`), and the
    work is bounded whatever the rule (`calendar_shift`). Raises RecurrenceRuleError (400,
    naming `rrule`) for a rule that is invalid, unbounded, sub-daily, gives no date, too many
    dates, or dates past the window."""
    rule_text = rrule.strip()
    if rule_text.upper().startswith("RRULE:"):
        rule_text = rule_text[6:]
    if "COUNT=" not in rule_text.upper() and "UNTIL=" not in rule_text.upper():
        raise _refuse("The rule needs COUNT or UNTIL.", "rrule-unbounded")
    parts = {name.upper(): value.strip().upper() for name, value in _PART.findall(rule_text)}
    if "BYEASTER" in parts or parts.get("FREQ", "DAILY") not in FREQUENCIES:
        raise _refuse(
            f"A series repeats with FREQ={', '.join(FREQUENCIES)} (and no BYEASTER).",
            "rrule-frequency",
        )
    _, last_day = schedule_window(today=today)
    last = datetime.combine(last_day, time.max)
    local_start = first_start.astimezone(tz).replace(tzinfo=None)
    shift = calendar_shift(last_day)
    try:
        rule = rrulestr(rule_text, dtstart=local_start)
        # dateutil keeps the parsed UNTIL and COUNT as attributes with no public reader.
        until, count = rule._until, rule._count
        # An UNTIL past the window bounds nothing: the first date past it is refused below.
        moved_until = until + shift if until and until <= last else None
        moved = rule.replace(dtstart=local_start + shift, until=moved_until)
        occurrences = []
        for moment in moved:
            moment -= shift
            if moment > last:
                raise _refuse(f"A series ends by {last_day.isoformat()}.", "rrule-too-far")
            occurrences.append(moment.replace(tzinfo=tz))
            if len(occurrences) > MAX_SERIES_OCCURRENCES:
                raise _refuse(
                    f"A series has at most {MAX_SERIES_OCCURRENCES} occurrences.", "rrule-too-long"
                )
    except (ValueError, TypeError, OverflowError) as error:
        raise _refuse(f"Invalid recurrence rule: {error}", "rrule-invalid") from error
    if not occurrences:
        raise _refuse(
            f"The rule gives no date from {local_start.date().isoformat()} to "
            f"{last_day.isoformat()}.",
            "rrule-empty",
        )
    if count and len(occurrences) < count:  # the calendar ended first: dates past the window
        raise _refuse(f"A series ends by {last_day.isoformat()}.", "rrule-too-far")
    return occurrences


@dataclass
class SeriesResult:
    series: AppointmentSeries | None
    booked: list[Appointment]
    skipped: list[dict]


@transaction.atomic
def appointment_series_book(
    *,
    patient: Patient,
    practitioner: Practitioner,
    appointment_type: AppointmentType,
    first_start: datetime,
    rrule: str,
    booked_by=None,
    source: str = Appointment.Source.STAFF,
    timezone_name: str | None = None,
    location: Location | None = None,
    telehealth: bool | None = None,
    partial: bool = False,
    now: datetime | None = None,
) -> SeriesResult:
    """Book every occurrence of a recurring rule, all or nothing (default): one refused
    occurrence refuses the series (409 listing each with alternatives) and nothing is written.
    With `partial`, the free occurrences are booked and the others reported."""
    tz = ZoneInfo(timezone_name or practitioner.timezone)
    occurrences = series_occurrences(rrule=rrule, first_start=first_start, tz=tz)
    series = AppointmentSeries.objects.create(
        patient=patient,
        practitioner=practitioner,
        appointment_type=appointment_type,
        rrule=rrule,
        first_start=first_start,
        timezone=tz.key,
        created_by=booked_by,
    )
    booked, skipped = [], []
    for moment in occurrences:
        try:
            booked.append(
                appointment_book(
                    patient=patient,
                    practitioner=practitioner,
                    appointment_type=appointment_type,
                    start=moment.astimezone(ZoneInfo("UTC")),
                    booked_by=booked_by,
                    source=source,
                    location=location,
                    telehealth=telehealth,
                    series=series,
                    now=now,
                )
            )
        except ApplicationError as error:  # any refusal of one occurrence
            skipped.append(
                {
                    "start": moment.isoformat(),
                    "code": error.code,
                    "detail": error.detail,
                    "conflicting_appointments": error.extra.get("conflicting_appointments", []),
                    "suggested_alternatives": error.extra.get("suggested_alternatives", [])[:3],
                }
            )
    if skipped and not partial:
        raise SeriesConflictError(
            f"{len(skipped)} of {len(occurrences)} occurrences cannot be booked; nothing was "
            "booked. Send partial=true to book the free ones.",
            extra={"occurrences": skipped},
        )
    if not booked:
        transaction.set_rollback(True)
        return SeriesResult(series=None, booked=[], skipped=skipped)
    return SeriesResult(series=series, booked=booked, skipped=skipped)


@transaction.atomic
def appointment_series_cancel(
    *, series: AppointmentSeries, by=None, reason: str = "", after: datetime | None = None
) -> list[Appointment]:
    """Cancel the series' booked occurrences from `after` (default: now) on."""
    after = after or timezone.now()
    cancelled = []
    for appointment in series.appointments.filter(status=Status.BOOKED, start__gte=after):
        cancelled.append(appointment_cancel(appointment=appointment, by=by, reason=reason))
    return cancelled

"""Recurring treatment plans built from an authorization line: a weekday (or several), a time,
a practitioner and a number of weeks become a series (`series.appointment_series_book`),
checked first against what the line allows (its dates, the units left, its weekly cap), so a
plan that would exceed them is refused with what to change instead of failing visit by visit.

The checks here only explain; the guarantee stays the ledger's (`authorizations.services`:
the conditional UPDATE and the CHECK refuse an overdraft in each booking's transaction). The
line's row is locked while the plan is checked and booked, so two plans drawn on one line at
once are checked one after the other."""

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction

from authorizations import services as ledger
from authorizations.models import Authorization, AuthorizationLine, UnitReservation
from practice import formats
from practice.models import Practitioner

from .errors import BookingRefusedError
from .models import Appointment, AppointmentType
from .series import SeriesResult, appointment_series_book

MAX_PLAN_WEEKS = 52
RRULE_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True)
class PlanOutline:
    """What a plan would book: its dates and the units it draws."""

    dates: list[date]
    units_each: int
    units_total: int
    units_left: int


def _refuse(detail: str, code: str, field: str) -> BookingRefusedError:
    return BookingRefusedError(detail, code=code, field=field)


def plan_dates(*, first_day: date, weekdays: list[int], weeks: int) -> list[date]:
    """The plan's days: each of `weekdays` (0 = Monday) in `weeks` weeks from the week of
    `first_day`, none before it."""
    monday = first_day - timedelta(days=first_day.weekday())
    days = [
        monday + timedelta(days=7 * week + weekday)
        for week in range(weeks)
        for weekday in sorted(set(weekdays))
    ]
    return [day for day in days if day >= first_day]


def plan_outline(
    *,
    line: AuthorizationLine,
    appointment_type: AppointmentType,
    first_day: date,
    weekdays: list[int],
    weeks: int,
) -> PlanOutline:
    """Check a plan against the line (BookingRefusedError naming the field to change):
    the type bills one of the line's codes, every day lies inside the authorization, the
    units it needs are left, and no week passes the weekly cap."""
    authorization = line.authorization
    if not weekdays:
        raise _refuse("Pick at least one weekday.", "plan-no-weekday", "weekdays")
    if not 1 <= weeks <= MAX_PLAN_WEEKS:
        raise _refuse(f"A plan runs 1 to {MAX_PLAN_WEEKS} weeks.", "plan-weeks", "weeks")
    code = appointment_type.service_code
    if code is None or not line.service_codes.filter(pk=code.pk).exists():
        codes = ", ".join(line.service_codes.values_list("code", flat=True))
        raise _refuse(
            f"{appointment_type.name} is not billed under this line's codes ({codes}).",
            "plan-code-not-authorized",
            "appointment_type",
        )
    if authorization.status != Authorization.Status.ACTIVE:
        raise _refuse(
            f"Authorization {authorization.number} is {authorization.get_status_display()}.",
            "plan-authorization-inactive",
            "line",
        )
    dates = plan_dates(first_day=first_day, weekdays=weekdays, weeks=weeks)
    if not dates:
        raise _refuse("The plan gives no date.", "plan-empty", "weeks")
    outside = [
        day for day in dates if not authorization.start_date <= day <= authorization.end_date
    ]
    if outside:
        raise _refuse(
            f"Authorization {authorization.number} runs "
            f"{formats.message_date(authorization.start_date)} to "
            f"{formats.message_date(authorization.end_date)}; {len(outside)} of the plan's "
            f"{len(dates)} visits fall outside it (the first on "
            f"{formats.message_date(outside[0], style='long')}). Start later or "
            "plan fewer weeks.",
            "plan-outside-authorization",
            "weeks",
        )
    units_each = ledger.units_for_visit(
        minutes=appointment_type.duration_minutes, service_code=code
    )
    units_total = units_each * len(dates)
    left = line.units_remaining
    if units_total > left:
        raise _refuse(
            f"{len(dates)} visits of {units_each} units need {units_total} units; authorization "
            f"{authorization.number} has {left} left on this line (enough for "
            f"{left // units_each if units_each else 0} visits). Plan fewer weeks or weekdays.",
            "plan-exceeds-units",
            "weeks",
        )
    if line.weekly_cap:
        _check_weekly_caps(line, dates, units_each)
    return PlanOutline(dates, units_each, units_total, left)


def _check_weekly_caps(line: AuthorizationLine, dates: list[date], units_each: int) -> None:
    def monday(day: date) -> date:
        return day - timedelta(days=day.weekday())

    planned = Counter(monday(day) for day in dates)
    taken = (
        UnitReservation.objects.filter(
            line=line,
            state__in=(UnitReservation.State.RESERVED, UnitReservation.State.CONSUMED),
            service_date__range=(min(planned), max(planned) + timedelta(days=6)),
        )
        .values_list("service_date", "units")
        .order_by()
    )
    already: Counter[date] = Counter()
    for day, units in taken:
        already[monday(day)] += units
    cap = line.weekly_cap or 0
    for week, visits in sorted(planned.items()):
        total = already[week] + visits * units_each
        if total > cap:
            raise _refuse(
                f"Authorization {line.authorization.number} allows {cap} units a "
                f"week; the week of {formats.message_date(week)} would have {total} "
                f"({already[week]} booked, {visits} planned visits of {units_each}). Pick "
                "fewer weekdays.",
                "plan-exceeds-weekly-cap",
                "weekdays",
            )


@transaction.atomic
def treatment_plan_book(
    *,
    line: AuthorizationLine,
    practitioner: Practitioner,
    appointment_type: AppointmentType,
    weekdays: list[int],
    at: time,
    first_day: date,
    weeks: int,
    booked_by=None,
    now: datetime | None = None,
) -> SeriesResult:
    """Book a treatment plan for the line's patient: `plan_outline`'s checks under the line's
    row lock, then one series (RFC 5545 weekly rule, `at` on the practitioner's wall clock)
    booked partially: a day the rules refuse (a closure, time off, a taken slot) is skipped and
    reported, the others booked, each reserving its units in its own booking."""
    line = (
        AuthorizationLine.objects.select_for_update(of=("self",))
        .select_related("authorization__patient")
        .get(pk=line.pk)
    )
    outline = plan_outline(
        line=line,
        appointment_type=appointment_type,
        first_day=first_day,
        weekdays=weekdays,
        weeks=weeks,
    )
    days = ",".join(RRULE_DAYS[day] for day in sorted(set(weekdays)))
    zone = ZoneInfo(practitioner.timezone)
    return appointment_series_book(
        patient=line.authorization.patient,
        practitioner=practitioner,
        appointment_type=appointment_type,
        first_start=datetime.combine(outline.dates[0], at, tzinfo=zone),
        rrule=f"FREQ=WEEKLY;BYDAY={days};COUNT={len(outline.dates)}",
        booked_by=booked_by,
        source=Appointment.Source.STAFF,
        timezone_name=zone.key,
        partial=True,
        now=now,
    )

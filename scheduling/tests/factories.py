"""Small builders for scheduling tests (run inside a clinic schema)."""

import itertools
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from practice.models import Location, Patient, Practitioner, ServiceCode, Specialty
from scheduling.models import AppointmentType, WorkingHours

_seq = itertools.count(1)


def location(name: str = "Main St", tz: str = "America/New_York") -> Location:
    return Location.objects.create(name=f"{name} {next(_seq)}", timezone=tz)


def specialty(slug: str = "behavior-analysis") -> Specialty:
    return Specialty.objects.get_or_create(slug=slug, defaults={"name": slug.title()})[0]


def practitioner(
    *,
    tz: str = "America/New_York",
    hours: tuple[tuple[time, time], ...] = ((time(9), time(17)),),
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6),
    at: Location | None = None,
    specialties: tuple[Specialty, ...] = (),
    telehealth: bool = True,
    user=None,
    name: str | None = None,
) -> Practitioner:
    at = at or location(tz=tz)
    p = Practitioner.objects.create(
        display_name=name or f"Dr. Test {next(_seq)}",
        timezone=tz,
        offers_telehealth=telehealth,
        is_verified=True,
        user=user,
    )
    p.locations.add(at)
    for s in specialties:
        p.specialties.add(s)
    for weekday in weekdays:
        for start, end in hours:
            WorkingHours.objects.create(
                practitioner=p, weekday=weekday, start_time=start, end_time=end, location=at
            )
    return p


def patient(*, user=None, active: bool = True, first: str = "Pat") -> Patient:
    n = next(_seq)
    return Patient.objects.create(
        first_name=first,
        last_name=f"Patient{n}",
        date_of_birth=date(1990, 1, 1),
        timezone="America/New_York",
        user=user,
        is_active=active,
    )


def service_code(code: str = "97153", unit_minutes: int | None = 15) -> ServiceCode:
    return ServiceCode.objects.get_or_create(
        code=code, defaults={"label": "Therapy", "unit_minutes": unit_minutes}
    )[0]


def appointment_type(
    *practitioners: Practitioner,
    minutes: int = 60,
    before: int = 0,
    after: int = 0,
    notice: int = 0,
    horizon: int = 800,
    mode: str = AppointmentType.Mode.EITHER,
    code: ServiceCode | None = None,
) -> AppointmentType:
    t = AppointmentType.objects.create(
        name=f"Session {next(_seq)}",
        duration_minutes=minutes,
        buffer_before_minutes=before,
        buffer_after_minutes=after,
        min_notice_minutes=notice,
        horizon_days=horizon,
        mode=mode,
        service_code=code,
    )
    t.practitioners.add(*practitioners)
    return t


def local(day: date, hour: int, minute: int = 0, tz: str = "America/New_York") -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(tz))


def next_weekday(weekday: int, *, weeks_ahead: int = 1) -> date:
    """A date on `weekday` at least a few days from now (so minimum notice never bites)."""
    today = timezone.now().date() + timedelta(days=7 * weeks_ahead)
    return today + timedelta(days=(weekday - today.weekday()) % 7)

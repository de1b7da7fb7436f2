"""Small builders for scheduling tests (run inside a clinic schema)."""

import itertools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from authorizations.models import AuthorizationLine
from practice.models import Location, Patient, Practitioner, ServiceCode, Specialty
from scheduling.models import Appointment, AppointmentType, WorkingHours

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


# --- A clinic day (admin and schedule-board tests) ---------------------------------------------


@dataclass
class World:
    """Two practitioners (Alpha is the `practitioner` user's own record) working 09:00-17:00
    at Downtown, a 60-minute ABA visit drawing 4 units, and booked visits on `day`."""

    day: date
    downtown: Location
    uptown: Location
    aba: Specialty
    alpha: Practitioner
    beta: Practitioner
    gamma: Practitioner  # another specialty, at Uptown
    visit: AppointmentType
    patient: Patient
    other_patient: Patient
    line: AuthorizationLine
    alpha_visit: Appointment  # day 10:00 with Alpha, 4 units reserved
    beta_visit: Appointment  # day 11:00 with Beta

    def at(self, hour: int, minute: int = 0) -> datetime:
        return local(self.day, hour, minute)


def build_world(user=None, day: date | None = None) -> World:
    """Specialties, locations, three practitioners (Alpha linked to `user`), a 60-minute visit
    of 4 units, two patients (one with a 40-unit authorization) and two booked visits."""
    from authorizations.tests.factories import authorization
    from scheduling.services import appointment_book

    day = day or next_weekday(2)
    aba = specialty("behavior-analysis")
    physio = specialty("physical-therapy")
    downtown, uptown = location("Downtown"), location("Uptown")
    alpha = practitioner(name="Dr. Alpha", specialties=(aba,), at=downtown, user=user)
    beta = practitioner(name="Dr. Beta", specialties=(aba,), at=downtown)
    gamma = practitioner(name="Dr. Gamma", specialties=(physio,), at=uptown)
    code = service_code("97153", 15)
    visit = appointment_type(alpha, beta, gamma, minutes=60, code=code)
    robin, casey = patient(first="Robin"), patient(first="Casey")
    _, line = authorization(robin, code, units=40)
    alpha_visit = appointment_book(
        patient=robin, practitioner=alpha, appointment_type=visit, start=local(day, 10)
    )
    beta_visit = appointment_book(
        patient=casey, practitioner=beta, appointment_type=visit, start=local(day, 11)
    )
    return World(
        day=day,
        downtown=downtown,
        uptown=uptown,
        aba=aba,
        alpha=alpha,
        beta=beta,
        gamma=gamma,
        visit=visit,
        patient=robin,
        other_patient=casey,
        line=line,
        alpha_visit=alpha_visit,
        beta_visit=beta_visit,
    )


def after(moment: datetime, minutes: int = 5) -> datetime:
    return moment + timedelta(minutes=minutes)

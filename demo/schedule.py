"""The demo clinics' schedule, so the schedule board has a day to show: visit types, weekday
working hours, a little time off, authorizations for the ABA clinic, and visits from a week ago
to two weeks ahead (the past ones checked in and completed, some missed or cancelled).

Everything goes through the scheduling and authorization services, so the demo obeys every rule
(overlaps, hours, units). It is loaded once, into a clinic that has no visit type yet: it never
doubles, and it leaves alone a clinic whose schedule was set up otherwise.
"""

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from authorizations.models import Authorization, AuthorizationLine
from clinic.errors import ApplicationError
from practice.models import Patient, Practitioner, ServiceCode
from scheduling import services
from scheduling.models import Appointment, AppointmentType, TimeOff, WorkingHours


@dataclass(frozen=True)
class VisitType:
    name: str
    code: str | None
    minutes: int
    mode: str = AppointmentType.Mode.IN_PERSON
    specialties: tuple[str, ...] = ()  # offered by practitioners of these ("" = everyone)
    after: int = 0  # buffer minutes


TYPES = {
    "acme": (
        VisitType("ABA therapy session", "97153", 60, specialties=("behavior-analysis",), after=15),
        VisitType("BCBA supervision", "97155", 60, "either", ("behavior-analysis",)),
        VisitType("Parent coaching", "97156", 45, "either", ("behavior-analysis", "psychology")),
        VisitType("Initial assessment", "97151", 90, specialties=("behavior-analysis",)),
        VisitType(
            "Therapy session",
            None,
            50,
            "either",
            ("speech-therapy", "occupational-therapy", "psychology"),
        ),  # fmt: skip
    ),
    "liffey": (
        VisitType("First consultation", "99203", 30, after=10),
        VisitType("Review consultation", "99213", 20, "either"),
        VisitType("ECG with report", "93000", 15),
        VisitType("Echocardiogram", "93306", 45, specialties=("cardiac-imaging", "cardiology")),
    ),
}
DAYS_BACK, DAYS_AHEAD = 7, 14
VISITS_PER_DAY = (2, 3, 3, 4)


def schedule_seed(
    slug: str, *, today: date | None = None, days: tuple[int, int] = (DAYS_BACK, DAYS_AHEAD)
) -> dict[str, int]:
    """Load the demo schedule of clinic `slug` into the current schema, unless it has visit
    types already: visits from `days[0]` days ago to `days[1]` days ahead. Returns counts of
    what the clinic then holds."""
    if not AppointmentType.objects.exists():
        rng = random.Random(f"clinic-demo-schedule:{slug}")  # noqa: S311 (demo data)
        practitioners = list(
            Practitioner.objects.filter(is_active=True)
            .prefetch_related("specialties", "locations")
            .order_by("display_name", "id")
        )
        types = _types(slug, practitioners)
        _hours(practitioners, rng)
        if slug == "acme":
            _authorizations(rng)
        local_today = today or timezone.localdate(
            timezone=ZoneInfo(practitioners[0].timezone if practitioners else "UTC")
        )
        _time_off(practitioners, local_today)
        _visits(practitioners, types, rng, local_today, days)
    return {
        "types": AppointmentType.objects.count(),
        "appointments": Appointment.objects.count(),
        "authorizations": Authorization.objects.count(),
    }


def _types(slug: str, practitioners: list[Practitioner]) -> list[AppointmentType]:
    created = []
    codes = {code.code: code for code in ServiceCode.objects.all()}
    for spec in TYPES.get(slug, ()):
        visit = AppointmentType.objects.create(
            name=spec.name,
            service_code=codes.get(spec.code) if spec.code else None,
            duration_minutes=spec.minutes,
            buffer_after_minutes=spec.after,
            min_notice_minutes=60,
            horizon_days=120,
            mode=spec.mode,
        )
        offering = [
            p
            for p in practitioners
            if not spec.specialties or {s.slug for s in p.specialties.all()} & set(spec.specialties)
        ]
        visit.practitioners.set(
            [p for p in offering if spec.mode != "telehealth" or p.offers_telehealth]
        )
        created.append(visit)
    return created


def _hours(practitioners: list[Practitioner], rng: random.Random) -> None:
    blocks = []
    for index, practitioner in enumerate(practitioners):
        location = practitioner.locations.first()
        early = index % 3 == 1  # a third start at 08:00 and leave at 16:00
        day = ((time(8), time(12)), (time(12, 30), time(16))) if early else (
            (time(9), time(12, 30)), (time(13, 30), time(17)))  # fmt: skip
        weekdays = (0, 1, 2, 3, 4) if rng.random() < 0.8 else (0, 1, 3, 4)
        for weekday in weekdays:
            for start, end in day:
                blocks.append(
                    WorkingHours(
                        practitioner=practitioner,
                        weekday=weekday,
                        start_time=start,
                        end_time=end,
                        location=location,
                    )
                )
    WorkingHours.objects.bulk_create(blocks)


def _authorizations(rng: random.Random) -> None:
    """ABA patients' authorizations: most comfortable, some nearly used up or expiring."""
    codes = list(ServiceCode.objects.filter(code__in=("97153", "97155", "97156")))
    if not codes:
        return
    today = timezone.localdate()
    patients = list(Patient.objects.prefetch_related("coverages").order_by("id")[:24])
    for index, patient in enumerate(patients):
        coverage = patient.coverages.order_by("priority").first()
        if coverage is None:
            continue
        units = 40 if index % 6 == 0 else 400
        ends = today + timedelta(days=20 if index % 7 == 3 else rng.randrange(90, 200))
        authorization = Authorization.objects.create(
            patient=patient,
            coverage=coverage,
            number=f"AUTH-{today.year}-{1000 + index}",
            start_date=today - timedelta(days=60),
            end_date=ends,
        )
        line = AuthorizationLine.objects.create(authorization=authorization, units_authorized=units)
        line.service_codes.set(codes)


def _time_off(practitioners: list[Practitioner], today: date) -> None:
    for offset, practitioner, hours in ((2, 1, (9, 17)), (1, 3, (13, 17)), (8, 5, (8, 17))):
        if practitioner >= len(practitioners):
            continue
        who = practitioners[practitioner]
        tz = ZoneInfo(who.timezone)
        day = today + timedelta(days=offset)
        TimeOff.objects.create(
            practitioner=who,
            start=datetime.combine(day, time(hours[0]), tzinfo=tz),
            end=datetime.combine(day, time(hours[1]), tzinfo=tz),
            reason=("Conference", "Dentist", "Annual leave")[practitioner % 3],
        )


def _visits(practitioners, types, rng: random.Random, today: date, days: tuple[int, int]) -> None:
    patients = list(Patient.objects.filter(is_active=True).order_by("id"))
    hours = {p.pk: [] for p in practitioners}
    for block in WorkingHours.objects.order_by("start_time"):
        hours.setdefault(block.practitioner_id, []).append(block)
    offered = {p.pk: [] for p in practitioners}
    for visit_type in types:
        for practitioner_id in visit_type.practitioners.values_list("pk", flat=True):
            offered.setdefault(practitioner_id, []).append(visit_type)
    now = timezone.now()
    sources = ("staff", "staff", "staff", "portal", "api", "smart")
    for offset in range(-days[0], days[1] + 1):
        day = today + timedelta(days=offset)
        for practitioner in practitioners:
            if not offered[practitioner.pk] or not patients:
                continue
            tz = ZoneInfo(practitioner.timezone)
            starts = [
                datetime.combine(day, block.start_time, tzinfo=tz) + timedelta(minutes=minutes)
                for block in hours[practitioner.pk]
                if block.weekday == day.weekday()
                for minutes in range(0, 210, 90)  # apart enough for the longest visit
            ]
            count = min(len(starts), rng.choice(VISITS_PER_DAY))
            for start in sorted(rng.sample(starts, count)):
                visit_type = rng.choice(offered[practitioner.pk])
                _visit(practitioner, visit_type, rng.choice(patients), start,
                       rng.choice(sources), rng, now)  # fmt: skip


def _visit(practitioner, visit_type, patient, start, source, rng, now) -> None:
    try:
        appointment = services.appointment_book(
            patient=patient,
            practitioner=practitioner,
            appointment_type=visit_type,
            start=start,
            source=source,
            now=min(now, start - timedelta(days=1)),  # past visits were booked in the past
        )
    except ApplicationError:
        return  # taken, outside hours, no units: a demo just skips the slot
    if appointment.start > now:
        if rng.random() < 0.06:
            services.appointment_cancel(appointment=appointment, reason="Patient rescheduling")
        return
    fate = rng.random()
    if fate < 0.08:
        services.appointment_no_show(appointment=appointment, now=start + timedelta(minutes=15))
    elif fate < 0.14:
        services.appointment_cancel(
            appointment=appointment, reason="Unwell", now=start - timedelta(hours=20)
        )
    else:
        services.appointment_check_in(appointment=appointment, now=start - timedelta(minutes=5))
        if appointment.end <= now:
            services.appointment_complete(appointment=appointment, now=appointment.end)

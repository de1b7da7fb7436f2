"""Demo scheduling and authorizations: appointment types, working hours, time off, prior
authorizations (the ABA clinic: some nearly exhausted, some expiring soon) and a few weeks of
past and future visits, all written through the services (so they obey every rule and the
ledger explains every unit). Deterministic; runs once per clinic."""

import random
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from authorizations.models import Authorization, AuthorizationLine
from clinic.errors import ApplicationError
from practice.models import Coverage, Patient, Practitioner, ServiceCode
from scheduling import services
from scheduling.models import Appointment, AppointmentType, Closure, TimeOff, WorkingHours

# name, code, minutes, buffer after, mode
TYPES = {
    "acme": (
        ("Therapy session", "97153", 60, 10, "in_person"),
        ("Assessment", "97151", 90, 15, "in_person"),
        ("BCBA-led session", "97155", 60, 10, "either"),
        ("Parent coaching", "97156", 45, 5, "either"),
    ),
    "liffey": (
        ("First consultation", "99203", 45, 10, "in_person"),
        ("Review consultation", "99213", 20, 5, "either"),
        ("ECG with report", "93000", 15, 5, "in_person"),
        ("Echo (heart ultrasound)", "93306", 40, 10, "in_person"),
    ),
}
AUTHORIZED_CODES = ("97151", "97153", "97155", "97156", "97157")
# Each clinic's holiday: a whole-clinic closure on the first weekday this many days ahead.
HOLIDAYS = {"acme": "Staff training day", "liffey": "Clinic holiday"}
HOLIDAY_DAYS_AHEAD = 9


@transaction.atomic
def schedule_seed(slug: str) -> dict[str, int]:
    if Appointment.objects.exists():
        return {
            "appointments": Appointment.objects.count(),
            "types": AppointmentType.objects.count(),
            "authorizations": Authorization.objects.count(),
        }
    rng = random.Random(f"schedule-{slug}")
    practitioners = list(Practitioner.objects.filter(is_active=True).prefetch_related("locations"))
    types = _types(slug, practitioners)
    _hours(rng, practitioners)
    _holiday(slug)  # before the visits: none is booked on it
    if slug == "acme":
        ServiceCode.objects.filter(code__in=AUTHORIZED_CODES).update(requires_authorization=True)
        _authorizations(rng)
    _appointments(rng, practitioners, types)
    return {
        "appointments": Appointment.objects.count(),
        "types": len(types),
        "authorizations": Authorization.objects.count(),
    }


def _types(slug: str, practitioners: list[Practitioner]) -> list[AppointmentType]:
    created = []
    for name, code, minutes, after, mode in TYPES[slug]:
        t = AppointmentType.objects.create(
            name=name,
            service_code=ServiceCode.objects.filter(code=code).first(),
            duration_minutes=minutes,
            buffer_after_minutes=after,
            min_notice_minutes=120,
            horizon_days=120,
            mode=mode,
        )
        eligible = [p for p in practitioners if mode == "in_person" or p.offers_telehealth]
        if mode == "either":
            eligible = practitioners
        t.practitioners.set(eligible)
        created.append(t)
    return created


def _hours(rng: random.Random, practitioners: list[Practitioner]) -> None:
    rows = []
    for p in practitioners:
        location = next(iter(p.locations.all()), None)
        days = (0, 1, 2, 3, 4) if rng.random() < 0.7 else (0, 1, 3, 4, 5)
        for weekday in days:
            rows.append(WorkingHours(practitioner=p, weekday=weekday, start_time=time(9),
                                     end_time=time(12, 30), location=location))  # fmt: skip
            rows.append(WorkingHours(practitioner=p, weekday=weekday, start_time=time(13, 30),
                                     end_time=time(17), location=location))  # fmt: skip
        if p.offers_telehealth:
            rows.append(WorkingHours(practitioner=p, weekday=2, start_time=time(17, 30),
                                     end_time=time(19, 30), location=None))  # fmt: skip
    WorkingHours.objects.bulk_create(rows)
    today = timezone.localdate()
    for p in rng.sample(practitioners, k=min(3, len(practitioners))):
        tz = ZoneInfo(p.timezone)
        day = today + timedelta(days=rng.randrange(3, 20))
        TimeOff.objects.create(
            practitioner=p,
            start=datetime.combine(day, time.min, tz),
            end=datetime.combine(day + timedelta(days=1), time.min, tz),
            reason="Annual leave",
        )


def _holiday(slug: str) -> Closure:
    """A whole-clinic closure (a holiday) on a weekday in the demo's next weeks: the board
    notes it, availability, smart booking and series leave the day out."""
    day = timezone.localdate() + timedelta(days=HOLIDAY_DAYS_AHEAD)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return Closure.objects.create(name=HOLIDAYS[slug], start_date=day, end_date=day)


def _authorizations(rng: random.Random) -> None:
    codes = {c.code: c for c in ServiceCode.objects.filter(code__in=AUTHORIZED_CODES)}
    today = timezone.localdate()
    coverages = list(
        Coverage.objects.filter(priority="primary", is_active=True)
        .exclude(payer__claim_filing_code="09")
        .select_related("patient")
        .order_by("patient_id")
    )
    for index, coverage in enumerate(coverages[:25]):
        kind = (index + 2) % 5  # 0: nearly exhausted, 1: expiring soon, others: healthy
        start = today - timedelta(days=rng.randrange(20, 120))
        end = today + (timedelta(days=rng.randrange(8, 20)) if kind == 1 else timedelta(days=150))
        auth = Authorization.objects.create(
            patient=coverage.patient,
            coverage=coverage,
            number=f"PA-{coverage.payer.edi_payer_id}-{1000 + index}",
            start_date=start,
            end_date=end,
        )
        therapy = AuthorizationLine.objects.create(
            authorization=auth,
            units_authorized=16 if kind == 0 else rng.choice((160, 240, 320)),
            weekly_cap=None if kind == 0 else 60,
        )
        therapy.service_codes.set([codes["97153"], codes["97151"]])
        family = AuthorizationLine.objects.create(authorization=auth, units_authorized=48)
        family.service_codes.set([codes["97155"], codes["97156"], codes["97157"]])


def _appointments(rng: random.Random, practitioners, types) -> int:
    """Three weeks back (completed, some no-shows and cancellations) and three ahead."""
    patients = list(Patient.objects.filter(is_active=True))
    now = timezone.now()
    booked = 0
    for p in practitioners:
        offered = [t for t in types if p in t.practitioners.all()]
        tz = ZoneInfo(p.timezone)
        for offset in range(-21, 22):
            day = timezone.localdate() + timedelta(days=offset)
            if day.weekday() >= 5 or rng.random() < 0.35:
                continue
            for hour in rng.sample((9, 10, 11, 14, 15, 16), k=rng.choice((1, 2, 3))):
                start = datetime.combine(day, time(hour), tz)
                t = rng.choice(offered)
                patient = rng.choice(patients)
                pretend = start - timedelta(days=2) if start < now else None
                try:
                    a = services.appointment_book(
                        patient=patient, practitioner=p, appointment_type=t, start=start,
                        telehealth=t.mode == "either" and rng.random() < 0.3, now=pretend,
                        source=rng.choice(("staff", "staff", "portal", "api")),
                    )  # fmt: skip
                except ApplicationError:
                    continue  # outside this practitioner's hours, taken, or no units left
                booked += 1
                if start < now:
                    _settle(rng, a, start)
    return booked


def _settle(rng: random.Random, appointment: Appointment, start: datetime) -> None:
    after = start + timedelta(hours=2)
    roll = rng.random()
    if roll < 0.08:
        services.appointment_no_show(appointment=appointment, now=after)
    elif roll < 0.15:
        services.appointment_cancel(
            appointment=appointment, reason="Unwell", now=start - timedelta(days=1)
        )
    else:
        services.appointment_complete(appointment=appointment, now=after)

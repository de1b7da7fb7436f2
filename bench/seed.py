"""The benchmarks' data set, in the database DATABASE_URL names (bench/run.py points it at a
dedicated `<name>_bench` database, never the demo or test one).

    DATABASE_URL=postgres://.../clinic_bench .venv/bin/python bench/seed.py [--other-clinics 20]

A bench clinic (`bench.<base domain>`) with 200 practitioners across 8 specialties (languages,
locations, ratings, verified / accepting-new-patients / telehealth flags) and 5,000 patients,
plus 20 other clinics provisioned the real way (`tenants.services.clinic_create`, a clone of the
template schema). Deterministic (fixed random seed), fast (patients by COPY, the rest by
bulk_create in large batches) and re-runnable: every step first asks whether its data is
already there and tops up only what is missing.

Adding data for a new scenario: write `<thing>_count()` (what is there) and `<thing>_seed(n)`
(add n more) and append a `Step` to `STEPS`; steps run in order, bench-clinic steps inside the
bench clinic's schema.

For scenarios 2-6 the bench clinic also gets: a 30-min visit and a 60-min therapy session (97153,
15-min units, needs an authorization) offered by everyone; Mon-Fri 08:00-18:00 working hours in
each practitioner's zone; a specialty held by exactly 20 practitioners; 500 patients with a
coverage and an authorization (a line of 800 units of 97153); a front-desk and an integrator
user; 50,000 past and future appointments by COPY (never overlapping by construction, therapy
sessions in the unit ledger); and a fresh next-available row per practitioner.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import billing_data  # noqa: E402  (the billing step's data, beside this file)

BENCH_SLUG = "bench"
BENCH_NAME = "Bench Clinic"
BENCH_TIMEZONE = "America/New_York"
BENCH_ADMIN_EMAIL = "admin@bench.test"
BENCH_PASSWORD = "bench-clinic-pass"  # noqa: S105  (a local benchmark database)
OTHER_SLUG = "other{:02d}"
SEED = 20240909

SPECIALTIES = [
    ("behavior-analysis", "Behavior analysis"),
    ("cardiology", "Cardiology"),
    ("occupational-therapy", "Occupational therapy"),
    ("physiotherapy", "Physiotherapy"),
    ("psychiatry", "Psychiatry"),
    ("psychology", "Psychology"),
    ("speech-therapy", "Speech therapy"),
    ("nutrition", "Nutrition"),
]
TITLES = {
    "behavior-analysis": "BCBA",
    "cardiology": "MD",
    "occupational-therapy": "OTR/L",
    "physiotherapy": "PT, DPT",
    "psychiatry": "MD",
    "psychology": "PsyD",
    "speech-therapy": "CCC-SLP",
    "nutrition": "RDN",
}
LOCATIONS = [
    ("Downtown", "100 Main St, New York, NY", "America/New_York"),
    ("Brooklyn", "20 Atlantic Ave, Brooklyn, NY", "America/New_York"),
    ("Chicago Loop", "1 N State St, Chicago, IL", "America/Chicago"),
    ("Denver Tech Center", "5 Tech Ctr Pkwy, Denver, CO", "America/Denver"),
    ("Mission Bay", "9 Mission Bay Blvd, San Francisco, CA", "America/Los_Angeles"),
    ("Dublin Docklands", "3 Grand Canal Sq, Dublin", "Europe/Dublin"),
]
OTHER_LANGUAGES = ["fr", "pt", "zh", "vi", "ar", "ru", "de", "ko", "tl", "ht", "it", "pl"]
FIRST = (
    "Ana Ben Carla David Elena Farid Grace Hugo Irene Jamal Kenji Lucia Marco Nadia Omar "
    "Priya Quinn Rosa Samuel Tara Umar Valeria Wei Ximena Yusuf Zoe Aisha Bruno Chen Dmitri"
).split()
LAST = (
    "Garcia Smith Nguyen Johnson Martinez Brown Lopez Kim Patel Rossi Silva Murphy Cohen "
    "Okafor Haddad Novak Schmidt Tanaka Ibrahim Costa Walsh Dubois Kowalski Reyes Singh"
).split()


@dataclass(frozen=True)
class Sizes:
    practitioners: int = 200
    patients: int = 5000
    other_clinics: int = 20
    appointments: int = 50_000
    authorizations: int = 500
    charges: int = 100_000  # billing: two per seeded visit


@dataclass(frozen=True)
class Step:
    """`count()` says how much is there; `seed(missing)` adds the rest. In the bench clinic's
    schema unless `public`."""

    name: str
    target: Callable[[Sizes], int]
    count: Callable[[], int]
    seed: Callable[[int, int], None]  # (already there, how many to add)
    public: bool = False


def log(message: str) -> None:
    print(f"seed: {message}", file=sys.stderr, flush=True)


def copy_rows(model, fields: Sequence[str], rows: Iterable[Sequence]) -> int:
    """COPY rows into `model`'s table in the current schema: ~10x faster than INSERTs."""
    from django.db import connection

    columns = ", ".join(f'"{model._meta.get_field(f).column}"' for f in fields)
    n = 0
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
    return n


def npi_for(n: int) -> str:
    """A valid NPI (Luhn check digit over the 80840 prefix), unique per n."""
    from stdnum import luhn

    base = f"1{n:08d}"
    return base + luhn.calc_check_digit("80840" + base)


# --------------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------------


def bench_clinic():
    from tenants.models import Clinic

    return Clinic.objects.filter(slug=BENCH_SLUG).first()


def bench_clinic_count() -> int:
    return 1 if bench_clinic() else 0


def bench_clinic_seed(have: int, missing: int) -> None:
    from tenants.services import ClinicAdminSpec, clinic_create

    clinic_create(
        slug=BENCH_SLUG,
        name=BENCH_NAME,
        timezone=BENCH_TIMEZONE,
        admin=ClinicAdminSpec(email=BENCH_ADMIN_EMAIL, password=BENCH_PASSWORD),
    )


def specialties_count() -> int:
    from practice.models import Location, Specialty

    return min(Specialty.objects.count(), Location.objects.count())


def specialties_seed(have: int, missing: int) -> None:
    from practice.models import Location, Specialty

    for slug, name in SPECIALTIES:
        Specialty.objects.get_or_create(slug=slug, defaults={"name": name})
    for name, address, tz in LOCATIONS:
        Location.objects.get_or_create(name=name, defaults={"address": address, "timezone": tz})


def practitioners_count() -> int:
    from practice.models import Practitioner

    return Practitioner.objects.count()


def practitioners_seed(have: int, missing: int) -> None:
    """Specialty i % 8 first (25 each), a second one for 30%; English for 90%, Spanish for
    40%, another language for 25%; 80% verified, 70% accepting, 50% telehealth."""
    from practice.models import Location, Practitioner, Specialty

    rng = random.Random(SEED + have)
    specialties = list(Specialty.objects.order_by("slug"))
    by_slug = {s.slug: s for s in specialties}
    locations = list(Location.objects.order_by("name"))
    practitioners, picks = [], []
    for n in range(have, have + missing):
        first = by_slug[SPECIALTIES[n % len(SPECIALTIES)][0]]
        chosen = [first]
        if rng.random() < 0.3:
            chosen.append(rng.choice([s for s in specialties if s != first]))
        languages = [lang for lang, p in (("en", 0.9), ("es", 0.4)) if rng.random() < p]
        if rng.random() < 0.25 or not languages:
            languages.append(rng.choice(OTHER_LANGUAGES))
        places = rng.sample(locations, k=rng.choice((1, 1, 2)))
        count = rng.randint(0, 400)
        practitioners.append(
            Practitioner(
                display_name=f"{rng.choice(FIRST)} {rng.choice(LAST)} {n + 1}",
                title=TITLES.get(first.slug, ""),
                npi=npi_for(n),
                languages=languages,
                bio=f"{first.name} practitioner seeing patients at {places[0].name}.",
                rating_average=round(rng.uniform(3.0, 5.0), 2) if count else 0,
                rating_count=count,
                is_verified=rng.random() < 0.8,
                accepts_new_patients=rng.random() < 0.7,
                offers_telehealth=rng.random() < 0.5,
                timezone=places[0].timezone,
            )
        )
        picks.append((chosen, places))
    created = Practitioner.objects.bulk_create(practitioners, batch_size=1000)
    spec_links, loc_links = [], []
    SpecialtyLink = Practitioner.specialties.through
    LocationLink = Practitioner.locations.through
    for practitioner, (chosen, places) in zip(created, picks, strict=True):
        spec_links += [
            SpecialtyLink(practitioner_id=practitioner.pk, specialty_id=s.pk) for s in chosen
        ]
        loc_links += [
            LocationLink(practitioner_id=practitioner.pk, location_id=loc.pk) for loc in places
        ]
    SpecialtyLink.objects.bulk_create(spec_links, batch_size=5000)
    LocationLink.objects.bulk_create(loc_links, batch_size=5000)


def patients_count() -> int:
    from practice.models import Patient

    return Patient.objects.count()


def patients_seed(have: int, missing: int) -> None:
    from django.utils import timezone

    from practice.models import Patient

    rng = random.Random(SEED + 1 + have)
    now = timezone.now()
    cities = [("New York", "NY", "10001"), ("Chicago", "IL", "60601"), ("Denver", "CO", "80202")]

    def rows():
        for n in range(have, have + missing):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            city, state, postal = rng.choice(cities)
            yield (
                first,
                last,
                date(1940, 1, 1) + timedelta(days=rng.randint(0, 80 * 365)),
                rng.choice(("female", "male", "other", "unknown")),
                f"patient{n + 1}@bench.test",
                f"+1555{n + 1:07d}",
                "es" if rng.random() < 0.3 else "en",
                BENCH_TIMEZONE,
                f"{rng.randint(1, 999)} Elm St",
                "",
                city,
                state,
                postal,
                "US",
                True,
                now,
            )

    fields = [
        "first_name", "last_name", "date_of_birth", "sex", "email", "phone",
        "preferred_language", "timezone", "address_line1", "address_line2", "city", "state",
        "postal_code", "country", "is_active", "created_at",
    ]  # fmt: skip
    copy_rows(Patient, fields, rows())


def other_clinics_count() -> int:
    from tenants.models import Clinic

    return Clinic.objects.filter(slug__startswith="other").count()


def other_clinics_seed(have: int, missing: int) -> None:
    from tenants.models import Clinic
    from tenants.services import clinic_create

    existing = set(Clinic.objects.values_list("slug", flat=True))
    made, n = 0, 0
    while made < missing:
        n += 1
        slug = OTHER_SLUG.format(n)
        if slug in existing:
            continue
        clinic_create(slug=slug, name=f"Other Clinic {n}", timezone="America/Chicago")
        made += 1


# --------------------------------------------------------------------------------------------
# Schedule and authorizations (scenarios 2-6: availability, booking, race, authorizations,
# smart booking). Bench-clinic steps; each one counts what is there and adds the rest.
# --------------------------------------------------------------------------------------------

VISIT_TYPE = "Bench visit"  # 30 min, no service code
THERAPY_TYPE = "Bench therapy session"  # 60 min + 10 min buffer, 97153 (15-min units)
THERAPY_CODE = "97153"
BENCH_SPECIALTY = ("bench-twenty", "Bench twenty (availability)")
BENCH_SPECIALTY_SIZE = 20
FRONT_DESK_EMAIL = "frontdesk@bench.test"
INTEGRATOR_EMAIL = "integrator@bench.test"
AUTH_NUMBER_PREFIX = "BENCH-PA-"
LINE_UNITS = 800
SEED_NOTE = "bench seed"
WORK_HOURS = (8, 18)  # Mon-Fri, local wall clock in each practitioner's zone
# Seeded visits sit in 2-hour chunks of the working day, at most one per chunk and wholly
# inside it (a 30-min visit or a 60-min session + 10-min buffer starting on the hour or half
# past), so no two overlap by construction.
CHUNK_HOURS = (8, 10, 12, 14, 16)
PAST_DAYS = 90
FUTURE_DAYS = 45  # later days stay free for the booking scenarios (days 50-110 ahead)
THERAPY_SHARE = 0.15


def appointment_types_count() -> int:
    from scheduling.models import AppointmentType

    link = AppointmentType.practitioners.through
    return link.objects.filter(appointmenttype__name__in=(VISIT_TYPE, THERAPY_TYPE)).count()


def appointment_types_seed(have: int, missing: int) -> None:
    """The clinic's settings row, 97153 (15-min units, needs an authorization), a 30-min visit
    and a 60-min therapy session (97153), both offered by every practitioner: 60 min minimum
    notice, 120-day horizon."""
    from practice.models import ClinicSettings, Practitioner, ServiceCode
    from scheduling.models import AppointmentType

    ClinicSettings.load()
    code, _ = ServiceCode.objects.get_or_create(
        code=THERAPY_CODE,
        defaults={"label": "Therapy session", "unit_minutes": 15, "requires_authorization": True},
    )
    common = {"min_notice_minutes": 60, "horizon_days": 120, "mode": "in_person"}
    visit, _ = AppointmentType.objects.get_or_create(
        name=VISIT_TYPE, defaults={"duration_minutes": 30, **common}
    )
    therapy, _ = AppointmentType.objects.get_or_create(
        name=THERAPY_TYPE,
        defaults={
            "duration_minutes": 60,
            "buffer_after_minutes": 10,
            "service_code": code,
            **common,
        },
    )
    link = AppointmentType.practitioners.through
    linked = set(
        link.objects.filter(appointmenttype__in=(visit, therapy)).values_list(
            "appointmenttype_id", "practitioner_id"
        )
    )
    ids = list(Practitioner.objects.order_by("pk").values_list("pk", flat=True))
    link.objects.bulk_create(
        [
            link(appointmenttype_id=t.pk, practitioner_id=pk)
            for t in (visit, therapy)
            for pk in ids
            if (t.pk, pk) not in linked
        ],
        batch_size=5000,
    )


def _first_locations() -> dict[int, int]:
    """Each practitioner's first location (the one whose zone is the practitioner's)."""
    from practice.models import Practitioner

    first: dict[int, int] = {}
    link = Practitioner.locations.through
    for pk, location in link.objects.order_by("id").values_list("practitioner_id", "location_id"):
        first.setdefault(pk, location)
    return first


def working_hours_count() -> int:
    from scheduling.models import WorkingHours

    return WorkingHours.objects.count()


def working_hours_seed(have: int, missing: int) -> None:
    """Mon-Fri 08:00-18:00 in each practitioner's zone, at their first location."""
    from datetime import time as clock

    from practice.models import Practitioner
    from scheduling.models import WorkingHours

    first = _first_locations()
    without = Practitioner.objects.filter(working_hours__isnull=True).order_by("pk")
    WorkingHours.objects.bulk_create(
        [
            WorkingHours(
                practitioner_id=pk,
                weekday=weekday,
                start_time=clock(WORK_HOURS[0]),
                end_time=clock(WORK_HOURS[1]),
                location_id=first.get(pk),
            )
            for pk in without.values_list("pk", flat=True)
            for weekday in range(5)
        ],
        batch_size=5000,
    )


def bench_specialty_count() -> int:
    from practice.models import Practitioner

    link = Practitioner.specialties.through
    return link.objects.filter(specialty__slug=BENCH_SPECIALTY[0]).count()


def bench_specialty_seed(have: int, missing: int) -> None:
    """A specialty held by exactly 20 practitioners, spread evenly over all of them (zones,
    locations): 'availability for one specialty with 20 practitioners over 14 days'."""
    from practice.models import Practitioner, Specialty

    specialty, _ = Specialty.objects.get_or_create(
        slug=BENCH_SPECIALTY[0], defaults={"name": BENCH_SPECIALTY[1]}
    )
    link = Practitioner.specialties.through
    ids = list(
        Practitioner.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)
    )
    holders = set(
        link.objects.filter(specialty=specialty).values_list("practitioner_id", flat=True)
    )
    spread = ids[:: max(1, len(ids) // BENCH_SPECIALTY_SIZE)]
    picks = [pk for pk in spread + ids if pk not in holders]
    picks = list(dict.fromkeys(picks))[:missing]
    link.objects.bulk_create([link(practitioner_id=pk, specialty_id=specialty.pk) for pk in picks])


def coverages_count() -> int:
    from practice.models import Coverage

    return Coverage.objects.count()


def coverages_seed(have: int, missing: int) -> None:
    """Three payers; a primary coverage for the first patients (by id) that have none."""
    from django.utils import timezone

    from practice.models import Coverage, Patient, Payer

    payers = [
        Payer.objects.get_or_create(
            edi_payer_id=edi, defaults={"name": name, "claim_filing_code": filing}
        )[0]
        for name, edi, filing in (
            ("Bench Health Plan", "BENCH1", "CI"),
            ("Bench Blue", "BENCH2", "BL"),
            ("Bench Medicaid", "BENCH3", "MC"),
        )
    ]
    since = timezone.localdate() - timedelta(days=365)
    patients = Patient.objects.filter(coverages__isnull=True).order_by("pk")[:missing]
    Coverage.objects.bulk_create(
        [
            Coverage(
                patient_id=pk,
                payer=payers[pk % len(payers)],
                member_id=f"M{pk:09d}",
                effective_from=since,
            )
            for pk in patients.values_list("pk", flat=True)
        ],
        batch_size=5000,
    )


def authorizations_count() -> int:
    from authorizations.models import Authorization

    return Authorization.objects.filter(number__startswith=AUTH_NUMBER_PREFIX).count()


def authorizations_seed(have: int, missing: int) -> None:
    """One active authorization per covered patient (from 100 days ago to 150 days ahead),
    each with one line of 800 units of 97153 and no weekly cap."""
    from django.utils import timezone

    from authorizations.models import Authorization, AuthorizationLine
    from practice.models import Coverage, ServiceCode

    today = timezone.localdate()
    code = ServiceCode.objects.get(code=THERAPY_CODE)
    coverages = Coverage.objects.filter(authorizations__isnull=True).order_by("pk")[:missing]
    authorizations = Authorization.objects.bulk_create(
        [
            Authorization(
                patient_id=patient,
                coverage_id=coverage,
                number=f"{AUTH_NUMBER_PREFIX}{coverage:06d}",
                start_date=today - timedelta(days=100),
                end_date=today + timedelta(days=150),
                status=Authorization.Status.ACTIVE,
            )
            for coverage, patient in coverages.values_list("pk", "patient_id")
        ],
        batch_size=5000,
    )
    lines = AuthorizationLine.objects.bulk_create(
        [AuthorizationLine(authorization=a, units_authorized=LINE_UNITS) for a in authorizations],
        batch_size=5000,
    )
    link = AuthorizationLine.service_codes.through
    link.objects.bulk_create(
        [link(authorizationline_id=line.pk, servicecode_id=code.pk) for line in lines],
        batch_size=5000,
    )


def users_count() -> int:
    from accounts.models import User

    return User.objects.filter(email__in=(FRONT_DESK_EMAIL, INTEGRATOR_EMAIL)).count()


def users_seed(have: int, missing: int) -> None:
    """A front-desk user (booking, smart booking) and an integrator (the unit ledger API)."""
    from accounts.models import User
    from accounts.services import user_create

    for email, role in ((FRONT_DESK_EMAIL, "front_desk"), (INTEGRATOR_EMAIL, "integrator")):
        if not User.objects.filter(email=email).exists():
            user_create(email=email, password=BENCH_PASSWORD, roles=[role], validate=False)


def appointments_count() -> int:
    from scheduling.models import Appointment

    return Appointment.objects.filter(notes=SEED_NOTE).count()


def _chunks_taken(first_day: date, last_day: date, zones: dict[int, str]) -> set[tuple]:
    """(practitioner, day, chunk hour) that an active appointment already there touches: a
    top-up (or a re-run on a later day) places new visits around them."""
    from datetime import datetime
    from datetime import time as clock
    from zoneinfo import ZoneInfo

    from scheduling.models import ACTIVE_STATUSES, Appointment

    utc = ZoneInfo("UTC")
    lo = datetime.combine(first_day - timedelta(days=1), clock(), tzinfo=utc)
    hi = datetime.combine(last_day + timedelta(days=2), clock(), tzinfo=utc)
    taken = set()
    rows = Appointment.objects.filter(
        status__in=ACTIVE_STATUSES, start__lt=hi, end__gt=lo
    ).values_list("practitioner_id", "blocked")
    for pk, blocked in rows:
        tz = ZoneInfo(zones.get(pk, "UTC"))
        start, end = blocked.lower.astimezone(tz), blocked.upper.astimezone(tz)
        for day in {start.date(), end.date()}:
            for hour in CHUNK_HOURS:
                chunk = datetime.combine(day, clock(hour), tzinfo=tz)
                if start < chunk + timedelta(hours=2) and end > chunk:
                    taken.add((pk, day, hour))
    return taken


def _allocate_ids(model, n: int) -> list[int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, n],
        )
        return [row[0] for row in cursor.fetchall()]


def appointments_seed(have: int, missing: int) -> None:
    """Past and future visits by COPY, consistent with every rule the services enforce.

    Weekdays from 90 days ago to 45 days ahead; each visit in a free 2-hour chunk (above),
    inside the practitioner's working hours at their first location. Past visits are completed
    (80%), no-shows (8%) or cancelled (12%); future ones booked (95%) or cancelled. 15% are
    therapy sessions for patients with an authorization: their units are reserved (future),
    consumed (completed) or released (cancelled, no-show) in the ledger, and each line's
    counters grow by the same sums, in the same transaction. Refuses to commit if any two
    active visits of one practitioner overlap."""
    import uuid
    from datetime import datetime
    from datetime import time as clock
    from zoneinfo import ZoneInfo

    from django.db import connection, transaction
    from django.utils import timezone
    from psycopg.types.range import Range

    from authorizations.models import AuthorizationLine, UnitReservation
    from authorizations.services import units_for_visit
    from practice.models import Patient, Practitioner
    from scheduling.models import Appointment, AppointmentType
    from scheduling.selectors import appointments_overlapping

    rng = random.Random(SEED + 2 + have)
    now = timezone.now()
    today = timezone.localdate()
    visit = AppointmentType.objects.get(name=VISIT_TYPE)
    therapy = AppointmentType.objects.select_related("service_code").get(name=THERAPY_TYPE)
    therapy_units = units_for_visit(minutes=60, service_code=therapy.service_code)
    zones = dict(Practitioner.objects.filter(is_active=True).values_list("pk", "timezone"))
    location = _first_locations()
    patients = list(
        Patient.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)
    )
    line_of = dict(
        AuthorizationLine.objects.filter(
            authorization__number__startswith=AUTH_NUMBER_PREFIX,
            service_codes=therapy.service_code,
        ).values_list("authorization__patient_id", "pk")
    )
    authorized = sorted(line_of)

    first_day, last_day = today - timedelta(days=PAST_DAYS), today + timedelta(days=FUTURE_DAYS)
    taken = _chunks_taken(first_day, last_day, zones)
    candidates = []
    day = first_day
    while day <= last_day:
        if day.weekday() < 5:
            candidates += [
                (pk, day, hour)
                for pk in sorted(zones)
                for hour in CHUNK_HOURS
                if (pk, day, hour) not in taken
            ]
        day += timedelta(days=1)
    rng.shuffle(candidates)
    chosen = sorted(candidates[:missing])
    if len(chosen) < missing:
        log(f"appointments: only {len(chosen)} free chunks for {missing} visits")

    appointment_ids = _allocate_ids(Appointment, len(chosen))
    appointments, reservations = [], []
    added: dict[int, list[int]] = {}  # line -> [scheduled, used]
    for appointment_id, (pk, day, hour) in zip(appointment_ids, chosen, strict=True):
        tz = ZoneInfo(zones[pk])
        is_therapy = bool(authorized) and rng.random() < THERAPY_SHARE
        t = therapy if is_therapy else visit
        patient = rng.choice(authorized) if is_therapy else rng.choice(patients)
        start = datetime.combine(day, clock(hour, rng.choice((0, 30))), tzinfo=tz)
        end = start + timedelta(minutes=t.duration_minutes)
        blocked = Range(
            start - timedelta(minutes=t.buffer_before_minutes),
            end + timedelta(minutes=t.buffer_after_minutes),
            "[)",
        )
        created = min(start, now) - timedelta(days=rng.randint(1, 30), minutes=rng.randint(0, 600))
        checked_in = completed = cancelled = None
        roll = rng.random()
        if start < now:
            if roll < 0.80:
                status, checked_in, completed = "completed", start, min(end, now)
            elif roll < 0.88:
                status = "no_show"
            else:
                status, cancelled = "cancelled", start - timedelta(hours=rng.randint(2, 96))
        else:
            status = "booked" if roll < 0.95 else "cancelled"
            if status == "cancelled":
                cancelled = now - timedelta(hours=rng.randint(1, 12))
        created = min(created, cancelled or created)
        reservation_id = None
        if is_therapy:
            line = line_of[patient]
            state = {"completed": "consumed", "booked": "reserved"}.get(status, "released")
            reservation_id = len(reservations)  # an index until ids are allocated
            reservations.append(
                [
                    None,
                    line,
                    therapy_units,
                    state,
                    start.astimezone(tz).date(),
                    f"appointment:{appointment_id}",
                    created,
                    completed or cancelled or created,
                    completed if state == "consumed" else None,
                    (cancelled or end) if state == "released" else None,
                ]
            )
            counters = added.setdefault(line, [0, 0])
            counters[0] += therapy_units if state == "reserved" else 0
            counters[1] += therapy_units if state == "consumed" else 0
        appointments.append(
            [
                appointment_id, pk, patient, t.pk, location.get(pk), start, end, blocked,
                status, "staff", False, "", SEED_NOTE, None, created,
                completed or cancelled or created, False, None, cancelled, None,
                "Bench seed" if cancelled else "", False, checked_in, completed, 0, None, None,
                None, reservation_id, "", uuid.UUID(int=rng.getrandbits(128), version=4),
            ]
        )  # fmt: skip
    reservation_ids = _allocate_ids(UnitReservation, len(reservations))
    for row, reservation_id in zip(reservations, reservation_ids, strict=True):
        row[0] = reservation_id
    for row in appointments:
        if row[28] is not None:
            row[28] = reservation_ids[row[28]]

    with transaction.atomic():
        copy_rows(
            UnitReservation,
            ["id", "line", "units", "state", "service_date", "reference", "created_at",
             "updated_at", "consumed_at", "released_at"],
            reservations,
        )  # fmt: skip
        copy_rows(
            Appointment,
            ["id", "practitioner", "patient", "appointment_type", "location", "start", "end",
             "blocked", "status", "source", "is_telehealth", "telehealth_url", "notes",
             "booked_by", "created_at", "updated_at", "overbooked", "overbooked_by",
             "cancelled_at", "cancelled_by", "cancellation_reason", "is_late_cancel",
             "checked_in_at", "completed_at", "reschedule_count", "idempotency_key", "series",
             "smart_job_id", "unit_reservation", "authorization_warning", "uid"],
            appointments,
        )  # fmt: skip
        with connection.cursor() as cursor:
            cursor.executemany(
                "UPDATE authorizations_authorizationline SET units_scheduled = units_scheduled "
                "+ %s, units_used = units_used + %s WHERE id = %s",
                [(scheduled, used, line) for line, (scheduled, used) in added.items()],
            )
        overlaps = appointments_overlapping()
        if overlaps:
            raise RuntimeError(f"seeded appointments overlap: {overlaps[:5]}")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE scheduling_appointment")
        cursor.execute("ANALYZE authorizations_unitreservation")
    log(f"appointments: {len(reservations)} therapy sessions in the ledger; no overlaps")


def next_available_count() -> int:
    """Rows computed in the last 30 minutes (time moves on: a stale data set is refreshed)."""
    from django.utils import timezone

    from scheduling.models import NextAvailable

    fresh = timezone.now() - timedelta(minutes=30)
    return NextAvailable.objects.filter(computed_at__gte=fresh).count()


def next_available_seed(have: int, missing: int) -> None:
    from scheduling.next_available.refresh import next_available_refresh

    next_available_refresh()


SCHEDULE_STEPS: list[Step] = [
    Step("appointment types", lambda s: 2 * s.practitioners, appointment_types_count,
         appointment_types_seed),
    Step("working hours", lambda s: 5 * s.practitioners, working_hours_count, working_hours_seed),
    Step("bench specialty (20 practitioners)", lambda s: min(BENCH_SPECIALTY_SIZE, s.practitioners),
         bench_specialty_count, bench_specialty_seed),
    Step("payers and coverages", lambda s: s.authorizations, coverages_count, coverages_seed),
    Step("authorizations", lambda s: s.authorizations, authorizations_count, authorizations_seed),
    Step("bench users", lambda s: 2, users_count, users_seed),
    Step("appointments", lambda s: s.appointments, appointments_count, appointments_seed),
    Step("next available", lambda s: s.practitioners, next_available_count, next_available_seed),
    Step("charges", lambda s: s.charges, billing_data.charges_count, billing_data.charges_seed),
    Step("claims of the paid charges", lambda s: 1 if s.charges else 0,
         billing_data.claims_count, billing_data.claims_seed),
]  # fmt: skip


STEPS: list[Step] = [
    Step("bench clinic", lambda s: 1, bench_clinic_count, bench_clinic_seed, public=True),
    Step("specialties and locations", lambda s: 1, specialties_count, specialties_seed),
    Step("practitioners", lambda s: s.practitioners, practitioners_count, practitioners_seed),
    Step("patients", lambda s: s.patients, patients_count, patients_seed),
    Step(
        "other clinics",
        lambda s: s.other_clinics,
        other_clinics_count,
        other_clinics_seed,
        public=True,
    ),
    *SCHEDULE_STEPS,
]


def seed(sizes: Sizes, *, migrate: bool = True) -> dict[str, dict]:
    """Migrate, then run every step that has something missing. Returns what each step did."""
    from django.core.management import call_command
    from django_tenants.utils import schema_context

    report: dict[str, dict] = {}
    if migrate:
        started = time.perf_counter()
        call_command("migrate_schemas", verbosity=0)
        report["migrate"] = {"seconds": round(time.perf_counter() - started, 2)}
        log(f"migrate_schemas: {report['migrate']['seconds']} s")
    for step in STEPS:
        schema = "public" if step.public else bench_schema()
        with schema_context(schema):
            have, target = step.count(), step.target(sizes)
            if have >= target:
                report[step.name] = {"have": have, "added": 0, "seconds": 0.0}
                log(f"{step.name}: {have} already there")
                continue
            started = time.perf_counter()
            step.seed(have, target - have)
            seconds = round(time.perf_counter() - started, 2)
            report[step.name] = {"have": have, "added": target - have, "seconds": seconds}
            log(f"{step.name}: added {target - have} in {seconds} s")
    return report


def bench_schema() -> str:
    from django_tenants.utils import schema_context

    with schema_context("public"):
        clinic = bench_clinic()
    if clinic is None:
        raise RuntimeError("the bench clinic is missing: run the 'bench clinic' step first")
    return clinic.schema_name


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")
    import django

    django.setup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--practitioners", type=int, default=Sizes.practitioners)
    parser.add_argument("--patients", type=int, default=Sizes.patients)
    parser.add_argument("--other-clinics", type=int, default=Sizes.other_clinics)
    parser.add_argument("--no-migrate", action="store_true")
    args = parser.parse_args()
    setup_django()
    started = time.perf_counter()
    seed(Sizes(args.practitioners, args.patients, args.other_clinics), migrate=not args.no_migrate)
    log(f"done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()

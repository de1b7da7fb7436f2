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
bench clinic's schema. Working hours, appointments and authorizations go here once their models
exist.
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

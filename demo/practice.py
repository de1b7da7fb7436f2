"""The demo clinics' directory: locations, specialties, practitioners, patients with coverage,
payers and service codes. Written through the practice services (so the demo obeys every
rule), from a random generator seeded per clinic: a rerun computes the same rows and adds
only what is missing.

Service code labels are each clinic's own words: CPT descriptions are licensed and never
ship with Clinic.
"""

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from accounts.models import User
from practice import services
from practice.models import (
    ClinicSettings,
    Coverage,
    Location,
    Patient,
    Payer,
    Practitioner,
    ServiceCode,
    Specialty,
)
from practice.validators import npi_complete


@dataclass(frozen=True)
class LinkedPractitioner:
    email: str
    display_name: str
    title: str
    specialties: tuple[str, ...]
    languages: tuple[str, ...]


@dataclass(frozen=True)
class DirectorySpec:
    country: str
    timezone: str
    specialties: tuple[tuple[str, str], ...]  # (slug, name)
    locations: tuple[tuple[str, str, str], ...]  # (name, address, phone)
    titles: dict[str, tuple[str, ...]]  # specialty slug -> titles
    languages: tuple[str, ...]  # besides English
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    linked_practitioners: tuple[LinkedPractitioner, ...]
    linked_patients: dict[str, tuple[str, str]]  # email -> (first, last)
    payers: tuple[tuple[str, str, str], ...]  # (name, EDI payer id, claim filing code)
    service_codes: tuple[tuple[str, str, int | None], ...]  # (code, own label, unit minutes)
    bios: tuple[str, ...]
    practitioners: int = 14
    patients: int = 50


STREETS = {
    "US": ("Bergen Ave", "Grand St", "Madison Ave", "Court St", "Atlantic Ave"),
    "IE": ("Baggot St", "Rathmines Rd", "Clontarf Rd", "Main St", "Sandymount Ave"),
}


def _street(country: str, index: int) -> str:
    """A made-up street address (payers need the subscriber's), from the patient's index, so
    the rest of the demo's random choices stay as they were."""
    streets = STREETS[country]
    return f"{index * 7 % 390 + 1} {streets[index % len(streets)]}"


DIRECTORIES = {
    "acme": DirectorySpec(
        country="US",
        timezone="America/New_York",
        specialties=(
            ("behavior-analysis", "Behavior analysis (ABA)"),
            ("speech-therapy", "Speech and language therapy"),
            ("occupational-therapy", "Occupational therapy"),
            ("psychology", "Child psychology"),
        ),
        locations=(
            ("Acme Therapy Midtown", "240 West 35th Street, New York, NY 10001", "+1 212 555 0140"),
            ("Acme Therapy Brooklyn", "88 Court Street, Brooklyn, NY 11201", "+1 718 555 0188"),
            (
                "Acme Therapy Jersey City",
                "30 Montgomery Street, Jersey City, NJ 07302",
                "+1 201 555 0130",
            ),
        ),
        titles={
            "behavior-analysis": ("BCBA", "BCBA", "BCaBA", "RBT", "RBT"),
            "speech-therapy": ("SLP", "CCC-SLP"),
            "occupational-therapy": ("OTR/L",),
            "psychology": ("PsyD", "PhD"),
        },
        languages=("es", "pt", "zh", "pl", "ht", "ru", "ko", "ar"),
        first_names=(
            "Ana",
            "Ben",
            "Carmen",
            "Diego",
            "Elena",
            "Farah",
            "Grace",
            "Hugo",
            "Iris",
            "Jamal",
            "Kai",
            "Lucia",
            "Mei",
            "Noah",
            "Olga",
            "Priya",
            "Quinn",
            "Rosa",
            "Tomasz",
            "Wei",
        ),  # fmt: skip
        last_names=(
            "Alvarez",
            "Brooks",
            "Chen",
            "Dubois",
            "Evans",
            "Fernandes",
            "Garcia",
            "Haddad",
            "Ivanova",
            "Johnson",
            "Kowalski",
            "Lee",
            "Martinez",
            "Nguyen",
            "Okafor",
            "Park",
            "Santos",
            "Thompson",
            "Wang",
            "Zielinski",
        ),  # fmt: skip
        linked_practitioners=(
            LinkedPractitioner(
                "bcba@acme.test", "Dr. Maya Lopez", "BCBA-D", ("behavior-analysis",), ("en", "es")
            ),
            LinkedPractitioner(
                "rbt@acme.test", "Sam Rivera", "RBT", ("behavior-analysis",), ("en",)
            ),
        ),
        linked_patients={"patient@acme.test": ("Pat", "Jones")},
        payers=(
            ("Hudson Valley Health Plan", "HVHP1", "CI"),
            ("Empire Blue Shield", "EBS01", "BL"),
            ("New York State Medicaid", "NYMCD", "MC"),
            ("TRICARE East", "TRIEA", "CH"),
            ("Garden State PPO", "GSPPO", "12"),
        ),
        service_codes=(
            ("97151", "Assessment with your BCBA", 15),
            ("97153", "Therapy session with your RBT", 15),
            ("97155", "Session led by your BCBA", 15),
            ("97156", "Parent coaching", 15),
            ("97157", "Parent group", 15),
        ),
        bios=(
            "Works with children and teens on communication and daily-living skills.",
            "Builds play-based programs with families, at the clinic and at home.",
            "Focus on early intervention for toddlers and preschoolers.",
            "Supports school readiness and social skills groups.",
            "Parent training and coaching for routines at home.",
        ),
    ),
    "liffey": DirectorySpec(
        country="IE",
        timezone="Europe/Dublin",
        specialties=(
            ("cardiology", "Cardiology"),
            ("electrophysiology", "Heart rhythm (electrophysiology)"),
            ("heart-failure", "Heart failure"),
            ("cardiac-rehabilitation", "Cardiac rehabilitation"),
            ("cardiac-imaging", "Cardiac imaging"),
        ),
        locations=(
            (
                "Liffey Heart Clinic Ormond Quay",
                "12 Ormond Quay Upper, Dublin 7",
                "+353 1 555 0107",
            ),
            (
                "Liffey Heart Clinic Dún Laoghaire",
                "5 Marine Road, Dún Laoghaire, Co. Dublin",
                "+353 1 555 0120",
            ),
            ("Liffey Heart Clinic Swords", "Main Street, Swords, Co. Dublin", "+353 1 555 0140"),
        ),
        titles={
            "cardiology": ("MD, FRCPI", "MB BCh BAO", "MD"),
            "electrophysiology": ("MD, FRCPI",),
            "heart-failure": ("RANP", "MD"),
            "cardiac-rehabilitation": ("Physiotherapist", "CNS"),
            "cardiac-imaging": ("Cardiac physiologist", "MD"),
        },
        languages=("ga", "pl", "pt", "zh", "es", "fr", "lt", "ro"),
        first_names=(
            "Aoife",
            "Bartosz",
            "Ciara",
            "Darragh",
            "Eimear",
            "Fiachra",
            "Gráinne",
            "Joana",
            "Kasia",
            "Liam",
            "Lin",
            "Mateus",
            "Niamh",
            "Oisín",
            "Róisín",
            "Saoirse",
            "Tadhg",
            "Xiu",
            "Zofia",
            "Pádraig",
        ),  # fmt: skip
        last_names=(
            "Byrne",
            "Carroll",
            "Doyle",
            "Fitzgerald",
            "Gallagher",
            "Kavanagh",
            "Kennedy",
            "Lynch",
            "McCarthy",
            "Mazur",
            "Nolan",
            "Nowak",
            "O'Brien",
            "Ó Briain",
            "Quinn",
            "Ryan",
            "Silva",
            "Walsh",
            "Zhang",
            "Ní Bhriain",
        ),  # fmt: skip
        linked_practitioners=(
            LinkedPractitioner(
                "cardio@liffey.test", "Dr. Cian Murphy", "MD, FRCPI", ("cardiology",), ("en", "ga")
            ),
        ),
        linked_patients={"patient@liffey.test": ("Sean", "Walsh")},
        payers=(
            ("Harbour Health Insurance", "HHI01", "CI"),
            ("Shamrock Health", "SHAM1", "CI"),
            ("Emerald Life Cover", "EMLC1", "CI"),
            ("Public scheme (HSE)", "HSE01", "ZZ"),
            ("Self-pay", "SELF1", "09"),
        ),
        service_codes=(
            ("99203", "First consultation", None),
            ("99213", "Review consultation", None),
            ("93000", "Heart tracing (ECG) with report", None),
            ("93306", "Heart ultrasound (echo)", None),
            ("93224", "24-hour heart monitor", None),
        ),
        bios=(
            "Special interest in atrial fibrillation and palpitations.",
            "Runs the heart failure clinic and the nurse-led follow-up service.",
            "Echocardiography and cardiac MRI; reports within two working days.",
            "Leads the cardiac rehabilitation programme after heart attacks and surgery.",
            "Hypertension, cholesterol and prevention for families at risk.",
        ),
    ),
}


def _unique_npis(rng: random.Random, count: int) -> list[str]:
    npis: list[str] = []
    while len(npis) < count:
        npi = npi_complete(f"1{rng.randrange(10**8):08d}")
        if npi not in npis:
            npis.append(npi)
    return npis


def practice_seed(slug: str) -> dict[str, int]:
    """Create the missing part of clinic `slug`'s directory in the current schema."""
    spec = DIRECTORIES[slug]
    rng = random.Random(f"clinic-demo:{slug}")  # noqa: S311 (demo data, not secrets)
    currency, locale = {"US": ("USD", "en-US"), "IE": ("EUR", "en-IE")}[spec.country]
    ClinicSettings.objects.update_or_create(id=1, defaults={"currency": currency, "locale": locale})
    # The number and address the patient pages give wherever they say "call the clinic".
    ClinicSettings.objects.filter(id=1, phone="").update(
        phone=spec.locations[0][2], email=f"frontdesk@{slug}.example"
    )

    specialties = {}
    for specialty_slug, name in spec.specialties:
        specialty = Specialty.objects.filter(slug=specialty_slug).first()
        specialties[specialty_slug] = specialty or services.specialty_create(
            slug=specialty_slug, name=name
        )

    locations = []
    for name, address, phone in spec.locations:
        location = Location.objects.filter(name=name).first()
        locations.append(
            location
            or services.location_create(
                name=name, address=address, phone=phone, timezone=spec.timezone
            )
        )

    payers = []
    for name, edi_payer_id, filing_code in spec.payers:
        payer = Payer.objects.filter(edi_payer_id=edi_payer_id).first()
        payers.append(
            payer
            or services.payer_create(
                name=name, edi_payer_id=edi_payer_id, claim_filing_code=filing_code
            )
        )

    for code, label, unit_minutes in spec.service_codes:
        if not ServiceCode.objects.filter(code=code).exists():
            services.service_code_create(code=code, label=label, unit_minutes=unit_minutes)

    _seed_practitioners(spec, rng, specialties, locations)
    _seed_patients(spec, rng, payers)
    return {
        "practitioners": Practitioner.objects.count(),
        "patients": Patient.objects.count(),
        "coverages": Coverage.objects.count(),
    }


def _seed_practitioners(spec, rng, specialties, locations) -> None:
    npis = _unique_npis(rng, spec.practitioners)
    slugs = list(specialties)
    for index in range(spec.practitioners):
        # Draw every value on every run, whatever exists, so the sequence never shifts.
        linked = (
            spec.linked_practitioners[index] if index < len(spec.linked_practitioners) else None
        )
        slug = slugs[index % len(slugs)] if linked is None else linked.specialties[0]
        extra_specialty = rng.choice(slugs)
        name = f"{rng.choice(spec.first_names)} {rng.choice(spec.last_names)}"
        title = rng.choice(spec.titles[slug])
        spoken = ["en", *rng.sample(spec.languages, rng.choice((0, 1, 1, 2)))]
        rating = Decimal(rng.randrange(300, 501)) / 100
        rating_count = rng.randrange(0, 240)
        practitioner_locations = rng.sample(locations, rng.choice((1, 1, 2)))
        flags = [rng.random() < 0.8, rng.random() < 0.75, rng.random() < 0.5]
        bio = rng.choice(spec.bios)
        if Practitioner.objects.filter(npi=npis[index]).exists():
            continue
        user = None
        if linked is not None:
            name, title, spoken = linked.display_name, linked.title, list(linked.languages)
            user = User.objects.filter(email=linked.email).first()
            if user is not None and Practitioner.objects.filter(user=user).exists():
                user = None
        elif title.startswith(("MD", "MB", "PsyD", "PhD")):
            name = f"Dr. {name}"
        chosen = {slug} | ({extra_specialty} if rng.random() < 0.3 else set())
        services.practitioner_create(
            display_name=name,
            title=title,
            npi=npis[index],
            languages=spoken,
            bio=bio,
            rating_average=rating,
            rating_count=rating_count,
            is_verified=flags[0],
            accepts_new_patients=flags[1],
            offers_telehealth=flags[2],
            timezone=spec.timezone,
            user=user,
            specialties=[specialties[s] for s in sorted(chosen)],
            locations=practitioner_locations,
        )


def _seed_patients(spec, rng, payers) -> None:
    linked = list(spec.linked_patients.items())
    today = date(2026, 1, 1)  # fixed, so reruns compute the same birth dates
    insurers = [payer for payer in payers if payer.claim_filing_code != "09"]
    for index in range(spec.patients):
        first, last = rng.choice(spec.first_names), rng.choice(spec.last_names)
        born = today - timedelta(days=rng.randrange(3 * 365, 85 * 365))
        sex = rng.choice(("female", "male", "female", "male", "other", "unknown"))
        language = rng.choice(("en", "en", "en", *spec.languages))
        payer = rng.choice(insurers)
        second_payer = rng.choice(insurers) if rng.random() < 0.3 else None
        member = f"{payer.edi_payer_id[:3]}{rng.randrange(10**8):08d}"
        second_member = f"{rng.randrange(10**9):09d}"
        started = date(2025, 1, 1) + timedelta(days=rng.randrange(0, 365))
        copay = Decimal(rng.choice((0, 10, 20, 25, 40)))
        email = f"demo-patient-{index + 1:02d}@{spec.country.lower()}.example"
        user = None
        if index < len(linked):
            email, (first, last) = linked[index][0], linked[index][1]
            user = User.objects.filter(email=email).first()
        if Patient.objects.filter(email=email).exists():
            continue
        patient = services.patient_create(
            first_name=first,
            last_name=last,
            date_of_birth=born,
            sex=sex,
            email=email,
            preferred_language=language,
            timezone=spec.timezone,
            country=spec.country,
            address_line1=_street(spec.country, index),
            city="New York" if spec.country == "US" else "Dublin",
            state="NY" if spec.country == "US" else "",
            postal_code=f"100{index % 40 + 1:02d}" if spec.country == "US" else "D02X285",
            user=user,
        )
        services.coverage_create(
            patient=patient,
            payer=payer,
            member_id=member,
            group_number=f"G{rng.randrange(1000, 9999)}",
            effective_from=started,
            copay_amount=copay,
        )
        if second_payer is not None and second_payer != payer:
            services.coverage_create(
                patient=patient,
                payer=second_payer,
                member_id=second_member,
                priority=Coverage.Priority.SECONDARY,
                effective_from=started,
                effective_to=started + timedelta(days=365),
            )

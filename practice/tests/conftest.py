"""Fixtures of the practice tests: users of every role and a small directory in `acme`."""

from dataclasses import dataclass

import pytest

from clinic.permissions import ALL_ROLES
from practice.models import Location, Patient, Payer, Practitioner, Specialty
from tests.fixtures import in_clinic

from .factories import (
    LocationFactory,
    PatientFactory,
    PayerFactory,
    PractitionerFactory,
    SpecialtyFactory,
)
from .helpers import ANONYMOUS


@pytest.fixture
def clients(acme, make_user, client_for):
    """clients[role] -> a ClinicClient on acme signed in as a user of that role (`anonymous`
    is not signed in). The patient user is linked to `clients.patient_record`."""

    class Clients(dict):
        users: dict
        patient_record: Patient

    out = Clients()
    out.users = {}
    for role in ALL_ROLES:
        user = make_user(acme, role)
        out.users[role] = user
        out[role] = client_for(acme, user)
    out[ANONYMOUS] = client_for(acme)
    with in_clinic(acme):
        out.patient_record = PatientFactory(user=out.users["patient"], first_name="Own")
    return out


@dataclass
class Directory:
    cardiology: Specialty
    aba: Specialty
    downtown: Location
    uptown: Location
    practitioner: Practitioner
    other_patient: Patient
    payer: Payer


@pytest.fixture
def directory(acme) -> Directory:
    with in_clinic(acme):
        cardiology = SpecialtyFactory(slug="cardiology", name="Cardiology")
        aba = SpecialtyFactory(slug="behavior-analysis", name="Behavior analysis")
        downtown = LocationFactory(name="Downtown")
        uptown = LocationFactory(name="Uptown")
        practitioner = PractitionerFactory(
            display_name="Dr. Maya Lopez",
            specialties=[aba],
            locations=[downtown],
            languages=["en", "es"],
        )
        return Directory(
            cardiology=cardiology,
            aba=aba,
            downtown=downtown,
            uptown=uptown,
            practitioner=practitioner,
            other_patient=PatientFactory(first_name="Other", last_name="Person"),
            payer=PayerFactory(name="Acme Health", edi_payer_id="ACME1"),
        )

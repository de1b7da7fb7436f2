"""A small clinic for the patient-page tests: two practitioners of one specialty with hours
every day, a video-capable one, appointment types, and a patient with an account."""

from dataclasses import dataclass
from datetime import time

import pytest

from accounts.models import User
from practice.models import Location, Patient, Practitioner, Specialty
from scheduling.models import AppointmentType
from scheduling.tests import factories as f
from tenants.models import Clinic
from tests.fixtures import ClinicClient, in_clinic

PASSWORD = "a-long-test-password"


@dataclass
class World:
    clinic: Clinic
    specialty: Specialty
    location: Location
    maya: Practitioner
    sam: Practitioner
    visit: AppointmentType
    user: User
    patient: Patient


def build_world(clinic: Clinic, make_user) -> World:
    user = make_user(clinic, "patient", email="pat@example.com", password=PASSWORD)
    with in_clinic(clinic):
        specialty = f.specialty("speech-therapy")
        location = f.location("Midtown")
        maya = f.practitioner(
            name="Dr. Maya Lopez",
            specialties=(specialty,),
            at=location,
            hours=((time(9), time(12)), (time(13), time(17))),
        )
        maya.languages = ["en", "es"]
        maya.rating_average, maya.rating_count = 4.8, 31
        maya.bio = "Speech and language therapy for children and adults."
        maya.save()
        sam = f.practitioner(name="Sam Rivera", specialties=(specialty,), at=location)
        visit = f.appointment_type(maya, sam, minutes=45, notice=60, horizon=90)
        visit.name = "Speech session"
        visit.save()
        patient = f.patient(user=user, first="Pat")
        patient.email = user.email
        patient.save()
    return World(clinic, specialty, location, maya, sam, visit, user, patient)


@pytest.fixture
def world(acme, make_user) -> World:
    return build_world(acme, make_user)


def signed_in(clinic: Clinic, user: User) -> ClinicClient:
    """A browser-like client with a session cookie (the patient pages use sessions)."""
    client = ClinicClient(clinic)
    with in_clinic(clinic):
        client.force_login(user)
    return client


@pytest.fixture
def patient_client(world) -> ClinicClient:
    return signed_in(world.clinic, world.user)

"""The demo directory: big enough to search, valid, linked to the demo logins, and loaded
idempotently (a rerun adds nothing)."""

from demo.practice import practice_seed
from practice.models import (
    Coverage,
    Location,
    Patient,
    Payer,
    Practitioner,
    ServiceCode,
    Specialty,
)
from practice.validators import validate_npi
from tests.fixtures import in_clinic


def _counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Location, Specialty, Practitioner, Patient, Coverage, Payer, ServiceCode)
    }


def test_aba_demo_directory_is_complete_linked_and_idempotent(acme, make_user):
    users = {
        email: make_user(acme, role, email=email)
        for email, role in (
            ("bcba@acme.test", "practitioner"),
            ("rbt@acme.test", "practitioner"),
            ("patient@acme.test", "patient"),
        )
    }
    with in_clinic(acme):
        practice_seed("acme")
        first = _counts()
        practice_seed("acme")
        assert _counts() == first
        assert first["Practitioner"] >= 12 and first["Patient"] == 50
        assert first["Location"] == 3 and first["Specialty"] >= 3
        assert first["Coverage"] >= 50 and first["Payer"] >= 3
        for practitioner in Practitioner.objects.all():
            validate_npi(practitioner.npi)
            practitioner.full_clean()
        languages = {code for p in Practitioner.objects.all() for code in p.languages}
        assert len(languages) >= 4
        assert Practitioner.objects.values("specialties").distinct().count() >= 3
        codes = dict(ServiceCode.objects.values_list("code", "unit_minutes"))
        assert codes == {"97151": 15, "97153": 15, "97155": 15, "97156": 15, "97157": 15}
        assert Practitioner.objects.get(user=users["bcba@acme.test"]).display_name == (
            "Dr. Maya Lopez"
        )
        assert Practitioner.objects.filter(user=users["rbt@acme.test"]).exists()
        assert Patient.objects.get(user=users["patient@acme.test"]).first_name == "Pat"
        assert all(patient.coverages.exists() for patient in Patient.objects.all())


def test_cardiology_demo_uses_per_visit_codes_and_dublin_time(globex):
    with in_clinic(globex):
        practice_seed("liffey")
        assert set(ServiceCode.objects.values_list("unit_minutes", flat=True)) == {None}
        codes = set(ServiceCode.objects.values_list("code", flat=True))
        assert codes >= {"99203", "99213", "93000"}
        assert set(Practitioner.objects.values_list("timezone", flat=True)) == {"Europe/Dublin"}
        assert Practitioner.objects.filter(languages__contains=["ga"]).exists()
        assert Specialty.objects.filter(slug="cardiology").exists()

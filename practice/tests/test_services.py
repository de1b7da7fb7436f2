"""Services validate the whole row and write nothing on refusal; the database refuses what
slips past them; the role table reaches every clinic."""

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.roles import roles_sync
from clinic.permissions import OWN, SELF, Grant, installed_grants, role_permissions
from practice import services
from practice.models import ClinicSettings, Coverage, Patient, Practitioner, ServiceCode
from practice.validators import npi_complete, validate_npi
from tenants.services import clinics_roles_sync
from tests import clock
from tests.fixtures import in_clinic

from .factories import (
    CoverageFactory,
    LocationFactory,
    PatientFactory,
    PayerFactory,
    PractitionerFactory,
    SpecialtyFactory,
)

# NPI -----------------------------------------------------------------------------------------


def test_npi_complete_makes_numbers_the_validator_accepts():
    assert npi_complete("123456789") == "1234567893"  # the CMS worked example
    for first_nine in ("100000000", "199999999", "287654321"):
        validate_npi(npi_complete(first_nine))
    with pytest.raises(ValidationError):
        validate_npi("1234567890")


# Services ------------------------------------------------------------------------------------


def _practitioner(**overrides) -> Practitioner:
    fields = {"display_name": "Dr. New", "timezone": "Europe/Dublin", **overrides}
    return services.practitioner_create(**fields)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"npi": "1234567890"}, "npi"),
        ({"languages": ["en", "xx"]}, "languages"),
        ({"rating_average": Decimal("-0.5")}, "rating_average"),
        ({"timezone": "Europe/Atlantis"}, "timezone"),
    ],
)
def test_practitioner_create_refuses_bad_fields_and_writes_nothing(overrides, field, acme):
    with in_clinic(acme):
        with pytest.raises(ValidationError) as refused:
            _practitioner(**overrides)
        assert field in refused.value.message_dict
        assert not Practitioner.objects.exists()


def test_practitioner_create_sets_specialties_and_locations(acme):
    with in_clinic(acme):
        specialty, location = SpecialtyFactory(slug="cardiology"), LocationFactory()
        practitioner = _practitioner(
            npi=npi_complete("111111111"), specialties=[specialty], locations=[location]
        )
        assert list(practitioner.specialties.all()) == [specialty]
        assert list(practitioner.locations.all()) == [location]


def test_practitioner_update_changes_given_fields_only_and_replaces_sets(acme):
    with in_clinic(acme):
        old, new = SpecialtyFactory(slug="old"), SpecialtyFactory(slug="new")
        practitioner = PractitionerFactory(bio="Bio", specialties=[old])
        updated = services.practitioner_update(
            practitioner=practitioner, data={"title": "PT", "specialties": [new]}
        )
        fresh = Practitioner.objects.get(pk=practitioner.pk)
        assert (fresh.title, fresh.bio) == ("PT", "Bio")
        assert list(updated.specialties.all()) == [new]


def test_practitioner_update_refuses_unknown_fields(acme):
    with in_clinic(acme):
        practitioner = PractitionerFactory()
        with pytest.raises(ValidationError) as refused:
            services.practitioner_update(practitioner=practitioner, data={"is_active": False})
        assert "is_active" in refused.value.message_dict


def test_deactivate_and_reactivate_are_idempotent(acme):
    with in_clinic(acme):
        practitioner = PractitionerFactory()
        for _ in range(2):
            assert services.practitioner_deactivate(practitioner=practitioner).is_active is False
        assert services.practitioner_reactivate(practitioner=practitioner).is_active is True
        assert Practitioner.objects.get(pk=practitioner.pk).is_active


def test_linked_users_must_hold_the_matching_role(acme, make_user):
    biller = make_user(acme, "biller")
    with in_clinic(acme):
        with pytest.raises(ValidationError) as refused:
            _practitioner(user=biller)
        assert "user" in refused.value.message_dict
        with pytest.raises(ValidationError) as refused:
            services.patient_create(
                first_name="A",
                last_name="B",
                date_of_birth=datetime.date(1990, 1, 1),
                timezone="UTC",
                user=biller,
            )
        assert "user" in refused.value.message_dict


def test_patient_update_by_the_patient_is_limited_to_contact_fields(acme):
    with in_clinic(acme):
        patient = PatientFactory(first_name="Ann")
        with pytest.raises(ValidationError) as refused:
            services.patient_update(
                patient=patient, data={"first_name": "Eve", "phone": "1"}, by_patient=True
            )
        assert "first_name" in refused.value.message_dict
        assert Patient.objects.get(pk=patient.pk).phone == ""
        services.patient_update(patient=patient, data={"phone": "+1 555 0100"}, by_patient=True)
        assert Patient.objects.get(pk=patient.pk).phone == "+1 555 0100"


def test_patient_date_of_birth_cannot_be_in_the_future(acme):
    # The run's instant, held still: "tomorrow" is the day after the one the model reads.
    with in_clinic(acme), time_machine.travel(clock.run_instant(), tick=False):
        with pytest.raises(ValidationError) as refused:
            services.patient_create(
                first_name="A",
                last_name="B",
                date_of_birth=timezone.localdate() + datetime.timedelta(days=1),
                timezone="UTC",
            )
        assert "date_of_birth" in refused.value.message_dict


def test_coverage_create_refuses_reversed_dates_and_duplicates(acme):
    with in_clinic(acme):
        patient, payer = PatientFactory(), PayerFactory()
        common = {"patient": patient, "payer": payer, "member_id": "M1"}
        with pytest.raises(ValidationError) as refused:
            services.coverage_create(
                **common,
                effective_from=datetime.date(2026, 2, 1),
                effective_to=datetime.date(2026, 1, 31),
            )
        assert set(refused.value.message_dict) == {"effective_to"}
        services.coverage_create(**common, effective_from=datetime.date(2026, 1, 1))
        with pytest.raises(ValidationError) as refused:
            services.coverage_create(**common, effective_from=datetime.date(2026, 1, 1))
        assert set(refused.value.message_dict) == {"member_id"}
        assert Coverage.objects.count() == 1


def test_service_code_create_uppercases_and_checks_the_format(acme):
    with in_clinic(acme):
        assert services.service_code_create(code="g0151", label="Home visit").code == "G0151"
        with pytest.raises(ValidationError) as refused:
            services.service_code_create(code="9715", label="Too short")
        assert "code" in refused.value.message_dict
        assert ServiceCode.objects.count() == 1


def test_clinic_settings_update(acme):
    with in_clinic(acme):
        settings = services.clinic_settings_update(data={"slot_step_minutes": 30})
        assert settings.slot_step_minutes == 30 and ClinicSettings.load().slot_step_minutes == 30
        with pytest.raises(ValidationError):
            services.clinic_settings_update(data={"slot_step_minutes": 3})
        assert ClinicSettings.load().slot_step_minutes == 30


def test_a_race_on_a_unique_constraint_becomes_a_field_error(acme, monkeypatch):
    with in_clinic(acme):
        existing = PractitionerFactory()
        monkeypatch.setattr(Practitioner, "full_clean", lambda self, *a, **kw: None)
        with pytest.raises(ValidationError) as refused:
            _practitioner(npi=existing.npi)
        assert refused.value.message_dict == {"npi": ["Another practitioner has this NPI."]}
        assert Practitioner.objects.count() == 1  # and the transaction is still usable


# Database constraints: what bypasses Python is still refused ----------------------------------


def _refused_by_database(write) -> str:
    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        write()
    return refused.value.__cause__.diag.constraint_name


@pytest.mark.parametrize(
    ("npi", "constraint"),
    [
        ("12345abcde", "practitioner_npi_10_digits"),
        ("123456789", "practitioner_npi_10_digits"),
        ("1234567890", "practitioner_npi_check_digit"),
    ],
)
def test_database_refuses_a_bad_npi(npi, constraint, acme):
    with in_clinic(acme):
        name = _refused_by_database(lambda: PractitionerFactory(npi=npi))
        assert name in {constraint, "practitioner_npi_10_digits", "practitioner_npi_check_digit"}
        if constraint == "practitioner_npi_check_digit":
            assert name == constraint  # the format is fine: only the check digit is wrong
        PractitionerFactory(npi="1234567893")  # the valid neighbour goes in


def test_database_refuses_a_bad_npi_in_raw_sql(acme):
    with in_clinic(acme):

        def insert():
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO practice_practitioner (display_name, title, npi, languages, bio,"
                    " rating_average, rating_count, is_verified, accepts_new_patients,"
                    " offers_telehealth, timezone, is_active, created_at)"
                    " VALUES ('Raw', '', '1234567890', '{}', '', 0, 0, false, true, false,"
                    " 'UTC', true, now())"
                )

        assert _refused_by_database(insert) == "practitioner_npi_check_digit"


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"rating_average": Decimal("-1")}, "practitioner_rating_0_to_5"),
        ({"rating_average": Decimal("5.01")}, "practitioner_rating_0_to_5"),
    ],
)
def test_database_refuses_a_rating_out_of_range(fields, constraint, acme):
    with in_clinic(acme):
        assert _refused_by_database(lambda: PractitionerFactory(**fields)) == constraint


def test_database_refuses_reversed_coverage_dates(acme):
    with in_clinic(acme):
        patient, payer = PatientFactory(), PayerFactory()
        name = _refused_by_database(
            lambda: Coverage.objects.create(
                patient=patient,
                payer=payer,
                member_id="M",
                effective_from=datetime.date(2026, 2, 1),
                effective_to=datetime.date(2026, 1, 1),
            )
        )
        assert name == "coverage_dates_ordered"


def test_database_refuses_a_negative_copay_and_a_bad_service_code(acme):
    with in_clinic(acme):
        name = _refused_by_database(lambda: CoverageFactory(copay_amount=Decimal("-5")))
        assert name == "coverage_copay_non_negative"
        name = _refused_by_database(lambda: ServiceCode.objects.create(code="ABCDE", label="x"))
        assert name == "service_code_format"


def test_search_document_is_maintained_by_the_database(acme):
    with in_clinic(acme):
        practitioner = PractitionerFactory(display_name="Dr. Róisín Nolan", bio="Echo")
        Practitioner.objects.filter(pk=practitioner.pk).update(bio="Holter monitors")
        document = Practitioner.objects.values_list("search_document", flat=True).get()
        assert "holter" in document and "nolan" in document and "echo" not in document


# Roles -----------------------------------------------------------------------------------------


def test_role_table_grants(db):
    def holds(role: str, permission: str) -> bool:
        return permission in role_permissions({role})

    assert holds("front_desk", "practice.change_patient")
    assert holds("front_desk", "practice.add_coverage")
    assert not holds("front_desk", "practice.change_practitioner")
    assert holds("clinic_admin", "practice.change_servicecode")
    assert holds("clinic_admin", "practice.change_clinicsettings")
    assert holds("biller", "practice.view_coverage")
    assert not holds("biller", "practice.change_coverage")
    assert holds("practitioner", "practice.view_patient")
    assert not holds("practitioner", "practice.view_payer")
    # a patient's grants are self-service, on their own record: no model permission
    assert not holds("patient", "practice.view_patient")
    grants = installed_grants()
    assert grants["practitioner"]["practice.patient"].scope == OWN
    assert grants["patient"]["practice.patient"] == Grant(("view", "change", "export"), SELF)
    practice = {
        role: {label: grant for label, grant in table.items() if label.startswith("practice.")}
        for role, table in grants.items()
    }
    assert practice["integrator"] == practice["front_desk"]
    # nothing with history is deletable by anyone
    assert not any(
        "delete" in grant.actions for table in practice.values() for grant in table.values()
    )


def test_role_groups_carry_the_practice_permissions(acme):
    with in_clinic(acme):
        front_desk = Group.objects.get(name="front_desk")
        codenames = set(front_desk.permissions.values_list("codename", flat=True))
        assert {"add_patient", "change_patient", "view_patient", "change_coverage"} <= codenames
        assert "change_practitioner" not in codenames and "delete_patient" not in codenames


def test_existing_clinics_learn_new_grants_on_migrate(acme):
    """A clinic cloned before the practice grants existed (its groups lack them) gets them
    from `clinics_roles_sync`, which `migrate_schemas` runs."""
    with in_clinic(acme):
        Group.objects.get(name="biller").permissions.clear()
    assert clinics_roles_sync(schemas=["acme"]) == 1
    with in_clinic(acme):
        biller = Group.objects.get(name="biller")
        codenames = set(biller.permissions.values_list("codename", flat=True))
        assert {"view_payer", "view_coverage", "view_servicecode", "view_patient"} <= codenames


def test_clinics_roles_sync_syncs_only_the_clinics_whose_roles_differ(acme, globex):
    """The fingerprint of a clinic's groups matches the grants once synced, so a no-op migrate
    touches no clinic; a removed permission or a deleted group is found and put back."""
    clinics_roles_sync()
    assert clinics_roles_sync() == 0
    with in_clinic(globex):
        Group.objects.get(name="front_desk").permissions.remove(
            Permission.objects.get(codename="view_patient")
        )
    with in_clinic(acme):
        Group.objects.get(name="biller").delete()
    assert clinics_roles_sync() == 2
    assert clinics_roles_sync() == 0
    with in_clinic(acme):
        assert Group.objects.filter(name="biller").exists()


def test_roles_sync_is_three_queries_when_nothing_changed(acme, django_assert_max_num_queries):
    with in_clinic(acme):
        roles_sync()
        with django_assert_max_num_queries(5):  # the three reads and the savepoint pair
            roles_sync()

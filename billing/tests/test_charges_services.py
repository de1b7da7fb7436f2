"""Fee schedules, episodes and charges made from completed visits (billing.charges), against
the real database: prices by payer and date, units by the clinic's rounding and the
authorization, modifiers and place of service, the ledger posting, and why a visit cannot be
charged."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from authorizations.tests import factories as af
from billing import charges as services
from billing.charges import FeeSpec
from billing.ledger import charge_balance
from billing.models import BillingProfile, Charge, DiagnosisCode, Episode, LedgerEntry
from billing.tests import factories
from practice.models import ClinicSettings
from scheduling.services import appointment_book, appointment_complete
from scheduling.tests import factories as f
from tests.fixtures import in_clinic


def _self_pay_visit(*, minutes: int = 60, code: str = "97155", telehealth: bool = False):
    """A completed visit of a code no authorization covers, an episode without coverage and
    a self-pay fee of 45.00 a unit."""
    service = f.service_code(code, 15)
    doctor = f.practitioner()
    patient = f.patient()
    visit_type = f.appointment_type(doctor, minutes=minutes, code=service)
    start = f.local(f.next_weekday(2), 10)
    appointment = appointment_book(
        patient=patient,
        practitioner=doctor,
        appointment_type=visit_type,
        start=start,
        telehealth=telehealth,
    )
    appointment = appointment_complete(
        appointment=appointment, now=start + timedelta(minutes=minutes)
    )
    factories.fee_schedule(payer=None, code=service, charge="45.00", allowed="45.00")
    episode = factories.episode(patient, None)
    return appointment, episode


def test_a_completed_visit_makes_one_charge_posted_to_its_payer(acme):
    with in_clinic(acme):
        visit = factories.billable_visit(minutes=60)
        [charge] = services.charges_create_for_visit(appointment=visit.appointment)
        assert charge.units == 4 == visit.appointment.unit_reservation.units
        assert charge.amount == Decimal("200.00") and charge.expected_allowed == Decimal("160.00")
        assert (charge.payer, charge.coverage, charge.fee) == (
            visit.payer,
            visit.coverage,
            visit.fee,
        )
        assert charge.status == Charge.Status.OPEN
        assert charge.place_of_service == "11" and charge.modifiers == ""
        assert charge.diagnosis_pointers == [1] and charge.episode == visit.episode
        assert charge.authorization == visit.authorization
        assert charge.authorization_number == visit.authorization.number
        assert charge.rendering_npi == visit.practitioner.npi
        balance = charge_balance(charge=charge)
        assert (balance.payers, balance.patient) == (Decimal("200.00"), Decimal("0.00"))
        # Idempotent: a second run returns the same charge and posts nothing more.
        assert services.charges_create_for_visit(appointment=visit.appointment) == [charge]
        assert LedgerEntry.objects.filter(charge=charge).count() == 1
        assert services.unbilled_visits() == []


def test_a_visit_without_coverage_is_a_self_pay_charge_owed_by_the_patient(acme):
    with in_clinic(acme):
        appointment, _ = _self_pay_visit(minutes=30)
        [charge] = services.charges_create_for_visit(appointment=appointment)
        assert charge.status == Charge.Status.SELF_PAY and charge.payer is None
        assert charge.units == 2 and charge.amount == Decimal("90.00")
        entry = LedgerEntry.objects.get(charge=charge)
        assert (entry.party, entry.amount) == ("patient", Decimal("90.00"))


def test_a_visit_without_a_diagnosis_cannot_be_billed_and_says_why(acme):
    with in_clinic(acme):
        visit = factories.billable_visit()
        visit.episode.diagnoses.all().delete()
        [item] = services.unbilled_visits()
        assert item.appointment == visit.appointment
        assert [r.code for r in item.reasons] == ["no-diagnosis"]
        assert "has no diagnosis" in item.reasons[0].detail
        with pytest.raises(services.VisitNotBillableError) as caught:
            services.charges_create_for_visit(appointment=visit.appointment)
        assert caught.value.status == 409
        assert caught.value.extra["reasons"][0]["code"] == "no-diagnosis"
        assert not Charge.objects.exists() and not LedgerEntry.objects.exists()


def test_unbilled_visits_name_every_reason(acme):
    with in_clinic(acme):
        no_episode, episode = _self_pay_visit(code="97155")
        episode.delete()  # (the diagnoses go with it)
        no_fee, _ = _self_pay_visit(code="97156")
        from billing.models import Fee

        Fee.objects.filter(service_code__code="97156").delete()
        needs_auth, episode = _self_pay_visit(code="97158")
        coverage = af.coverage(needs_auth.patient)
        Episode.objects.filter(pk=episode.pk).update(coverage=coverage)
        factories.fee_schedule(payer=coverage.payer, code=needs_auth.appointment_type.service_code)
        needs_auth.appointment_type.service_code.__class__.objects.filter(code="97158").update(
            requires_authorization=True
        )
        needs_auth.practitioner.npi = factories.npi()
        needs_auth.practitioner.save()
        reasons = {
            u.appointment.pk: [r.code for r in u.reasons] for u in services.unbilled_visits()
        }
        assert reasons[no_episode.pk] == ["no-episode"]
        assert reasons[no_fee.pk] == ["no-coverage-no-self-pay-fee"]
        assert reasons[needs_auth.pk] == ["authorization-missing"]
        result = services.charges_create_for_completed()
        assert (result.created, result.skipped) == (0, 3)
        assert not Charge.objects.exists()


@pytest.mark.parametrize(
    ("rounding", "units"),
    [
        (ClinicSettings.UnitRounding.UP, 4),
        (ClinicSettings.UnitRounding.NEAREST, 3),
        (ClinicSettings.UnitRounding.DOWN, 3),
    ],
)
def test_units_follow_the_clinics_rounding_rule(acme, rounding, units):
    with in_clinic(acme):
        ClinicSettings.objects.update_or_create(pk=1, defaults={"unit_rounding": rounding})
        visit = factories.billable_visit(minutes=50)  # 3⅓ units of 15 minutes
        [charge] = services.charges_create_for_visit(appointment=visit.appointment)
        assert charge.units == units == visit.appointment.unit_reservation.units
        assert charge.amount == Decimal("50.00") * units


def test_units_that_disagree_with_the_authorization_are_refused(acme):
    with in_clinic(acme):
        visit = factories.billable_visit(minutes=50)  # 4 units consumed, rounding up
        ClinicSettings.objects.update_or_create(pk=1, defaults={"unit_rounding": "down"})
        with pytest.raises(services.ChargeUnitsMismatchError) as caught:
            services.charges_create_for_visit(appointment=visit.appointment)
        assert caught.value.status == 409 and caught.value.code == "charge-units-mismatch"
        assert "3 unit(s)" in caught.value.detail and "consumed 4" in caught.value.detail
        assert not Charge.objects.exists()
        [item] = services.unbilled_visits()
        assert [r.code for r in item.reasons] == ["units-mismatch"]


def test_telehealth_adds_modifier_95_and_pos_10_with_the_credential_modifier(acme):
    with in_clinic(acme):
        BillingProfile.objects.update_or_create(
            pk=1, defaults={"credential_modifiers": {"BCBA": "HO", "RBT": "HM"}}
        )
        appointment, _ = _self_pay_visit(telehealth=True)
        assert appointment.is_telehealth
        appointment.practitioner.title = "BCBA"
        appointment.practitioner.save()
        [charge] = services.charges_create_for_visit(appointment=appointment)
        assert charge.modifiers == "HO:95" and charge.place_of_service == "10"
        # No fee for HO:95: the code's fee without modifiers prices it.
        assert charge.fee.modifiers == "" and charge.amount == Decimal("180.00")


def test_a_fee_with_the_charges_modifiers_is_preferred(acme):
    with in_clinic(acme):
        appointment, _ = _self_pay_visit(telehealth=True)
        schedule, base = factories.fee_schedule(
            payer=None, code=appointment.appointment_type.service_code
        )
        services.fee_schedule_update(
            schedule=schedule,
            fees=[
                FeeSpec(base.service_code, Decimal("45.00"), Decimal("45.00")),
                FeeSpec(base.service_code, Decimal("40.00"), Decimal("40.00"), modifiers="95"),
            ],
        )
        [charge] = services.charges_create_for_visit(appointment=appointment)
        assert charge.fee.modifiers == "95" and charge.amount == Decimal("160.00")


def test_charge_void_reverses_its_ledger_entry_and_frees_the_visit(acme):
    with in_clinic(acme):
        visit = factories.billable_visit()
        [charge] = services.charges_create_for_visit(appointment=visit.appointment)
        with pytest.raises(ValidationError) as caught:
            services.charge_void(charge=charge, reason=" ")
        assert "reason" in caught.value.message_dict
        services.charge_void(charge=charge, reason="Wrong code")
        charge.refresh_from_db()
        assert charge.status == Charge.Status.VOID and charge.void_reason == "Wrong code"
        assert charge_balance(charge=charge).total == Decimal("0.00")
        with pytest.raises(services.ChargeStateError):
            services.charge_void(charge=charge, reason="Again")
        [again] = services.charges_create_for_visit(appointment=visit.appointment)
        assert again.pk != charge.pk
        Charge.objects.filter(pk=again.pk).update(status=Charge.Status.BILLED)
        with pytest.raises(services.ChargeStateError) as refused:
            services.charge_void(charge=again, reason="On a claim")
        assert "claim" in refused.value.detail


def test_fee_schedules_of_one_payer_never_overlap_and_fees_are_found_by_date(acme):
    with in_clinic(acme):
        code = f.service_code("97153", 15)
        payer = af.payer()
        first = services.fee_schedule_create(
            name="2025",
            payer=payer,
            effective_from=date(2025, 1, 1),
            effective_to=date(2025, 12, 31),
            fees=[FeeSpec(code, Decimal("50"), Decimal("40"))],
        )
        with pytest.raises(ValidationError) as caught:
            services.fee_schedule_create(
                name="Overlap", payer=payer, effective_from=date(2025, 6, 1)
            )
        assert list(caught.value.message_dict) == ["effective_from"]
        services.fee_schedule_create(
            name="2026",
            payer=payer,
            effective_from=date(2026, 1, 1),
            fees=[FeeSpec(code, Decimal("55"), None, modifiers="hm")],
        )
        # Another payer's (or the default's) dates are their own.
        services.fee_schedule_create(name="Default", payer=None, effective_from=date(2025, 6, 1))
        found = services.fee_for(payer=payer, service_code=code, modifiers="", on=date(2025, 7, 1))
        assert found is not None and found.schedule == first
        assert (
            services.fee_for(payer=payer, service_code=code, modifiers="", on=date(2026, 2, 1))
            is None
        )
        hm = services.fee_for(payer=payer, service_code=code, modifiers="HM", on=date(2026, 2, 1))
        assert hm is not None and hm.charge_per_unit == Decimal("55.00")
        with pytest.raises(ValidationError) as bad:
            services.fee_schedule_update(
                schedule=first, fees=[FeeSpec(code, Decimal("1"), modifiers="H")]
            )
        assert list(bad.value.message_dict) == ["fees.0.modifiers"]
        with pytest.raises(ValidationError) as ends:
            services.fee_schedule_update(schedule=first, effective_to=date(2024, 1, 1))
        assert list(ends.value.message_dict) == ["effective_to"]


def test_episode_diagnoses_are_ranked_format_checked_and_in_the_loaded_list(acme):
    with in_clinic(acme):
        patient = f.patient()
        episode = services.episode_create(
            patient=patient, start_date=date(2026, 1, 1), diagnoses=["f840", "Z13.41"]
        )
        assert [(d.rank, d.code) for d in episode.diagnoses.all()] == [
            (1, "F84.0"),
            (2, "Z13.41"),
        ]
        with pytest.raises(ValidationError) as caught:
            services.episode_update(episode=episode, diagnoses=["F84.0", "84.0"])
        assert list(caught.value.message_dict) == ["diagnoses.1"]
        with pytest.raises(ValidationError) as empty:
            services.episode_create(patient=patient, start_date=date(2026, 1, 1), diagnoses=[])
        assert list(empty.value.message_dict) == ["diagnoses"]
        other = af.coverage(f.patient())
        with pytest.raises(ValidationError) as theirs:
            services.episode_update(episode=episode, coverage=other)
        assert list(theirs.value.message_dict) == ["coverage"]
        order_file = [
            "00001 A00     0 Cholera                                                      "
            "Cholera\n",
            "00002 F840    1 Autistic disorder                                            "
            "Autistic disorder\n",
            "00003 Z1341   1 Encounter for autism screening                               "
            "Encounter for autism screening\n",
        ]
        assert services.icd10_load(lines=order_file) == 2
        assert DiagnosisCode.objects.get(code="F84.0").description == "Autistic disorder"
        with pytest.raises(ValidationError) as unknown:
            services.episode_update(episode=episode, diagnoses=["F84.0", "F84.5"])
        assert (
            "not in the clinic's ICD-10-CM code list"
            in unknown.value.message_dict["diagnoses.1"][0]
        )
        assert [d.code for d in episode.diagnoses.all()] == ["F84.0", "Z13.41"]  # unchanged


def test_billing_load_icd10_loads_the_cms_order_file_into_one_clinic(acme, globex, tmp_path):
    from django.core.management import call_command

    order_file = tmp_path / "icd10cm_order_2026.txt"
    order_file.write_text(
        "00001 F84     0 Pervasive developmental disorders                            "
        "Pervasive developmental disorders\n"
        "00002 F840    1 Autistic disorder                                            "
        "Autistic disorder\n",
        encoding="latin-1",
    )
    call_command("billing_load_icd10", str(order_file), "--clinic", "acme")
    with in_clinic(acme):
        assert list(DiagnosisCode.objects.values_list("code", flat=True)) == ["F84.0"]
    with in_clinic(globex):
        assert not DiagnosisCode.objects.exists()

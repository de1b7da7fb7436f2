"""The billing invariants PostgreSQL holds by itself (constraints and triggers), whatever the
code above it does."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import IntegrityError, InternalError, ProgrammingError, transaction

from billing.models import (
    Charge,
    Claim,
    ClaimLine,
    Episode,
    EpisodeDiagnosis,
    FeeSchedule,
    LedgerEntry,
)
from billing.tests import factories
from scheduling.tests import factories as f
from tests.fixtures import in_clinic


def _charge(world) -> Charge:
    episode = Episode.objects.create(patient=world.patient, start_date=date(2026, 1, 1))
    EpisodeDiagnosis.objects.create(episode=episode, rank=1, code="F84.0")
    return Charge.objects.create(
        appointment=world.alpha_visit,
        patient=world.patient,
        episode=episode,
        service_code=world.visit.service_code,
        service_date=world.day,
        units=4,
        place_of_service="11",
        diagnosis_pointers=[1],
        amount=Decimal("200.00"),
        rendering=world.alpha,
    )


def test_the_ledger_is_append_only(acme):
    with in_clinic(acme):
        world = f.build_world()
        charge = _charge(world)
        entry = LedgerEntry.objects.create(
            patient=world.patient,
            party="patient",
            charge=charge,
            kind="charge",
            amount=Decimal("200.00"),
            posted_on=world.day,
        )
        with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
            LedgerEntry.objects.filter(pk=entry.pk).update(amount=Decimal("1.00"))
        with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
            LedgerEntry.objects.filter(pk=entry.pk).delete()
        with pytest.raises(IntegrityError), transaction.atomic():
            LedgerEntry.objects.create(
                patient=world.patient, party="payer", kind="charge", amount=1, posted_on=world.day
            )  # a payer's entry names its payer
        assert LedgerEntry.objects.get().amount == Decimal("200.00")


def test_a_submitted_claims_lines_are_frozen(acme):
    with in_clinic(acme):
        world = f.build_world()
        charge = _charge(world)
        from authorizations.tests.factories import coverage

        cover = coverage(world.patient)
        claim = Claim.objects.create(
            patient=world.patient,
            payer=cover.payer,
            coverage=cover,
            episode=charge.episode,
            rendering=world.alpha,
            total_charge=charge.amount,
        )
        line = ClaimLine.objects.create(
            claim=claim, charge=charge, number=1, amount=charge.amount, units=4
        )
        ClaimLine.objects.filter(pk=line.pk).update(units=3)  # a draft's lines may change
        Claim.objects.filter(pk=claim.pk).update(status="submitted")
        with pytest.raises(IntegrityError), transaction.atomic():
            ClaimLine.objects.filter(pk=line.pk).update(units=4)
        with pytest.raises(IntegrityError), transaction.atomic():
            ClaimLine.objects.filter(pk=line.pk).delete()
        assert ClaimLine.objects.get().units == 3


def test_one_payers_fee_schedules_never_overlap(acme):
    with in_clinic(acme):
        FeeSchedule.objects.create(
            name="2026", effective_from=date(2026, 1, 1), effective_to=date(2026, 12, 31)
        )
        FeeSchedule.objects.create(
            name="2027", effective_from=date(2027, 1, 1), effective_to=date(2027, 12, 31)
        )
        with pytest.raises(IntegrityError), transaction.atomic():
            FeeSchedule.objects.create(name="mid", effective_from=date(2027, 6, 1))
        assert FeeSchedule.objects.count() == 2


def test_the_factorys_visit_is_completed_with_its_units_consumed(acme):
    with in_clinic(acme):
        visit = factories.billable_visit(minutes=60)
        assert visit.appointment.status == "completed"
        visit.line.refresh_from_db()
        assert visit.line.units_used == 4 and visit.line.units_scheduled == 0

"""Issue 16: no stored date out of range, whatever path writes it. Every date of a visit, time
off, working hours, series, smart-booking window, authorization, ledger entry, patient's birth
and coverage is held by a
CHECK (`clinic.inputs.stored_range`: 1900-01-01 to 2200-12-31, fixed since a constraint cannot
read the clock); the rules about today stay in Python. An ORM write that skips validation
(`update()`) meets the constraint. The data migrations that brought older rows into range
before the constraints were added are run here on rows written with the constraint dropped."""

import importlib
from datetime import UTC, date, datetime

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction

from authorizations.models import Authorization, UnitReservation
from practice.models import Coverage, Patient, Payer
from scheduling.models import (
    Appointment,
    AppointmentSeries,
    SmartBookingJob,
    TimeOff,
    WorkingHours,
)
from scheduling.tests.factories import build_world
from tests.fixtures import in_clinic

YEAR_1 = datetime(1, 1, 2, tzinfo=UTC)
YEAR_9999 = datetime(9999, 12, 30, tzinfo=UTC)
YEAR_2300 = datetime(2300, 1, 1, 10, tzinfo=UTC)


@pytest.fixture
def world(acme):
    with in_clinic(acme):
        world = build_world()
        TimeOff.objects.create(
            practitioner=world.alpha, start=datetime(2027, 1, 4, tzinfo=UTC),
            end=datetime(2027, 1, 5, tzinfo=UTC),
        )  # fmt: skip
        world.job = SmartBookingJob.objects.create(
            patient=world.patient,
            request={"earliest_date": "2027-01-04", "latest_date": "2027-01-18"},
        )
        world.series = AppointmentSeries.objects.create(
            patient=world.patient, practitioner=world.alpha, appointment_type=world.visit,
            rrule="FREQ=WEEKLY;COUNT=2", first_start=world.alpha_visit.start,
            timezone="America/New_York",
        )  # fmt: skip
        payer = Payer.objects.create(name="Range Health", edi_payer_id="RANGE1")
        world.coverage = Coverage.objects.create(
            patient=world.patient, payer=payer, member_id="R-1", effective_from=date(2026, 1, 1)
        )
        yield world


def _rows(world):
    return {
        "appointment": Appointment.objects.filter(pk=world.alpha_visit.pk),
        "time_off": TimeOff.objects.all(),
        "hours": WorkingHours.objects.filter(practitioner=world.alpha),
        "series": AppointmentSeries.objects.filter(pk=world.series.pk),
        "job": SmartBookingJob.objects.filter(pk=world.job.pk),
        "authorization": Authorization.objects.filter(patient=world.patient),
        "ledger": UnitReservation.objects.all(),
        "patient": Patient.objects.filter(pk=world.patient.pk),
        "coverage": Coverage.objects.filter(pk=world.coverage.pk),
    }


OUT_OF_RANGE = [
    ("appointment", {"start": YEAR_2300, "end": YEAR_2300.replace(hour=11),
                     "blocked": (YEAR_2300, YEAR_2300.replace(hour=11))},
     "appointment_stored_range"),
    ("time_off", {"start": YEAR_1}, "time_off_stored_range"),
    ("time_off", {"end": YEAR_9999}, "time_off_stored_range"),
    ("hours", {"effective_from": date(1, 1, 1)}, "working_hours_effective_stored_range"),
    ("hours", {"effective_to": date(9999, 12, 31)}, "working_hours_effective_stored_range"),
    ("series", {"first_start": YEAR_9999}, "appointment_series_stored_range"),
    ("job", {"request": {"earliest_date": "0001-01-01", "latest_date": "2027-01-18"}},
     "smart_job_earliest_stored_range"),
    ("job", {"request": {"earliest_date": "2027-01-04", "latest_date": "9999-12-31"}},
     "smart_job_latest_stored_range"),
    ("authorization", {"start_date": date(1, 1, 1)}, "authorization_dates_stored_range"),
    ("authorization", {"end_date": date(9999, 12, 31)}, "authorization_dates_stored_range"),
    ("ledger", {"service_date": date(9999, 12, 31)}, "unit_reservation_stored_range"),
    ("patient", {"date_of_birth": date(1, 1, 1)}, "patient_dob_stored_range"),
    ("patient", {"date_of_birth": date(9999, 12, 31)}, "patient_dob_stored_range"),
    ("coverage", {"effective_from": date(1, 1, 1)}, "coverage_dates_stored_range"),
    ("coverage", {"effective_to": date(9999, 12, 31)}, "coverage_dates_stored_range"),
]  # fmt: skip


@pytest.mark.parametrize(("rows", "change", "constraint"), OUT_OF_RANGE)
def test_an_out_of_range_date_written_past_validation_is_refused(world, rows, change, constraint):
    queryset = _rows(world)[rows]
    assert queryset.exists()
    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        queryset.update(**change)
    assert constraint in str(refused.value)


def test_dates_at_the_ends_of_the_stored_range_are_kept(world):
    _rows(world)["authorization"].update(start_date=date(1900, 1, 1), end_date=date(2200, 12, 31))
    TimeOff.objects.update(
        start=datetime(1900, 1, 1, tzinfo=UTC), end=datetime(2201, 1, 1, tzinfo=UTC)
    )
    assert TimeOff.objects.get().end.year == 2201


def _migration(app: str, name: str):
    return importlib.import_module(f"{app}.migrations.{name}")


def _without(*constraints: str) -> None:
    """Drop the constraints for this test's transaction (rolled back with it)."""
    tables = {
        "time_off_stored_range": TimeOff,
        "working_hours_effective_stored_range": WorkingHours,
        "smart_job_earliest_stored_range": SmartBookingJob,
        "smart_job_latest_stored_range": SmartBookingJob,
        "authorization_dates_stored_range": Authorization,
        "coverage_dates_stored_range": Coverage,
    }
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending checks: ALTER may run
        for name in constraints:
            cursor.execute(f"ALTER TABLE {tables[name]._meta.db_table} DROP CONSTRAINT {name}")


def test_the_data_migrations_bring_older_rows_into_range_keeping_their_meaning(world):
    _without(
        "time_off_stored_range",
        "working_hours_effective_stored_range",
        "smart_job_latest_stored_range",
        "authorization_dates_stored_range",
    )
    alpha = world.alpha
    TimeOff.objects.all().delete()
    away = TimeOff.objects.create(
        practitioner=alpha, start=YEAR_1, end=datetime(2027, 1, 5, tzinfo=UTC)
    )
    TimeOff.objects.create(practitioner=alpha, start=YEAR_1, end=datetime(2, 1, 1, tzinfo=UTC))
    hours = WorkingHours.objects.filter(practitioner=alpha).first()
    WorkingHours.objects.filter(pk=hours.pk).update(
        effective_from=date(1, 1, 1), effective_to=date(9999, 12, 31)
    )
    SmartBookingJob.objects.filter(pk=world.job.pk).update(
        request={"earliest_date": "2027-01-04", "latest_date": "9999-12-31"}
    )
    _rows(world)["authorization"].update(start_date=date(1, 1, 1))

    _migration("scheduling", "0007_dates_into_stored_range").clean(apps, None)
    _migration("authorizations", "0002_dates_into_stored_range").clean(apps, None)

    [kept] = TimeOff.objects.all()  # the one wholly before 1900 covered no bookable time
    assert kept.pk == away.pk
    assert (kept.start, kept.end) == (datetime(1900, 1, 1, tzinfo=UTC), away.end)
    hours.refresh_from_db()
    assert (hours.effective_from, hours.effective_to) == (None, None)  # open: the same meaning
    job = SmartBookingJob.objects.get(pk=world.job.pk)
    assert job.request["latest_date"] == "2200-12-31" and job.status == "failed"
    assert "9999-12-31" in job.error_message and job.completed_at is not None
    assert _rows(world)["authorization"].get().start_date == date(1900, 1, 1)


def test_the_coverage_migration_keeps_what_a_coverage_covered(world):
    _without("coverage_dates_stored_range")
    open_ended = world.coverage
    Coverage.objects.filter(pk=open_ended.pk).update(
        effective_from=date(1, 1, 1), effective_to=date(9999, 12, 31)
    )
    ancient = Coverage.objects.create(
        patient=world.patient, payer=open_ended.payer, member_id="R-2",
        effective_from=date(1, 1, 1), effective_to=date(2, 1, 1),
    )  # fmt: skip

    _migration("practice", "0006_dates_into_stored_range").clean(apps, None)

    open_ended.refresh_from_db()
    assert (open_ended.effective_from, open_ended.effective_to) == (date(1900, 1, 1), None)
    assert open_ended.is_active
    ancient.refresh_from_db()  # covered no visit: kept for the claims that name it, inactive
    assert (ancient.effective_from, ancient.effective_to) == (date(1900, 1, 1), date(1900, 1, 1))
    assert not ancient.is_active

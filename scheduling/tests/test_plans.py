"""Recurring treatment plans from an authorization line (issue 18): a series within the line's
dates, units left and weekly cap, refusing what would exceed them with what to change."""

from datetime import time, timedelta

import pytest

from authorizations.models import AuthorizationLine
from authorizations.selectors import ledger_mismatches
from authorizations.tests import factories as af
from scheduling.errors import BookingRefusedError
from scheduling.models import Appointment, Closure
from scheduling.plans import plan_dates, treatment_plan_book
from scheduling.tests import factories as f
from tests.fixtures import in_clinic


@pytest.fixture
def setup(acme, make_user):
    desk = make_user(acme, "front_desk")
    with in_clinic(acme):
        p = f.practitioner()
        code = f.service_code("97153", 15)
        t = f.appointment_type(p, minutes=60, code=code)  # 4 units a visit
        patient = f.patient()
        monday = f.next_weekday(0)
        auth, line = af.authorization(
            patient,
            code,
            units=40,
            start=monday - timedelta(days=7),
            end=monday + timedelta(days=60),
        )
        yield {"p": p, "t": t, "patient": patient, "monday": monday, "line": line,
               "auth": auth, "desk": desk}  # fmt: skip


def _plan(setup, **kw):
    kw.setdefault("weekdays", [0, 2])
    kw.setdefault("weeks", 3)
    kw.setdefault("first_day", setup["monday"])
    return treatment_plan_book(
        line=setup["line"], practitioner=setup["p"], appointment_type=setup["t"],
        at=time(10), booked_by=setup["desk"], **kw,
    )  # fmt: skip


def test_plan_dates_are_the_weekdays_of_each_week_from_the_first_day(setup):
    wednesday = setup["monday"] + timedelta(days=2)
    days = plan_dates(first_day=wednesday, weekdays=[0, 2], weeks=2)
    assert days == [wednesday, wednesday + timedelta(days=5), wednesday + timedelta(days=7)]


def test_a_plan_within_the_line_books_a_series_and_reserves_its_units(setup):
    result = _plan(setup)
    assert len(result.booked) == 6 and not result.skipped
    assert {a.start.weekday() for a in result.booked} == {0, 2}
    assert all(a.series_id == result.series.pk for a in result.booked)
    line = AuthorizationLine.objects.get(pk=setup["line"].pk)
    assert line.units_scheduled == 24
    assert ledger_mismatches() == []


def test_a_plan_past_the_units_left_is_refused_saying_how_many_fit(setup):
    with pytest.raises(BookingRefusedError) as refused:
        _plan(setup, weekdays=[0, 2, 4], weeks=4)  # 12 visits, 48 units > 40
    assert refused.value.code == "plan-exceeds-units"
    assert "weeks" in refused.value.extra["errors"]
    assert "48 units" in refused.value.detail and "40 left" in refused.value.detail
    assert "10 visits" in refused.value.detail
    assert Appointment.objects.count() == 0


def test_a_plan_past_the_weekly_cap_is_refused(setup):
    AuthorizationLine.objects.filter(pk=setup["line"].pk).update(weekly_cap=4)
    setup["line"].refresh_from_db()
    with pytest.raises(BookingRefusedError) as refused:
        _plan(setup, weekdays=[0, 2], weeks=2)
    assert refused.value.code == "plan-exceeds-weekly-cap"
    assert "weekdays" in refused.value.extra["errors"] and "4 units a week" in refused.value.detail
    assert Appointment.objects.count() == 0
    assert len(_plan(setup, weekdays=[2], weeks=2).booked) == 2  # one a week fits


def test_a_plan_past_the_authorizations_end_is_refused(setup):
    with pytest.raises(BookingRefusedError) as refused:
        _plan(setup, weekdays=[0], weeks=10)
    assert refused.value.code == "plan-outside-authorization"
    assert setup["auth"].number in refused.value.detail
    assert Appointment.objects.count() == 0


def test_a_type_outside_the_lines_codes_is_refused(setup):
    other = f.appointment_type(setup["p"], minutes=60, code=f.service_code("97155", 15))
    with pytest.raises(BookingRefusedError) as refused:
        treatment_plan_book(
            line=setup["line"], practitioner=setup["p"], appointment_type=other,
            weekdays=[0], at=time(10), first_day=setup["monday"], weeks=1,
        )  # fmt: skip
    assert refused.value.code == "plan-code-not-authorized"
    assert "appointment_type" in refused.value.extra["errors"]


def test_a_closed_day_in_a_plan_is_skipped_and_reported(setup):
    holiday = setup["monday"] + timedelta(days=7)
    Closure.objects.create(name="Founders' day", start_date=holiday, end_date=holiday)
    result = _plan(setup, weekdays=[0], weeks=3)
    assert [a.start.date() for a in result.booked] == [
        setup["monday"],
        setup["monday"] + timedelta(days=14),
    ]
    [skipped] = result.skipped
    assert skipped["code"] == "clinic-closed" and "Founders' day" in skipped["detail"]
    assert AuthorizationLine.objects.get(pk=setup["line"].pk).units_scheduled == 8

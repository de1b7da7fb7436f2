"""The ledger wired into booking: every lifecycle step moves the units in the same transaction."""

from datetime import timedelta

import pytest
import time_machine

from authorizations import selectors
from authorizations.errors import (
    AuthorizationExhaustedError,
    AuthorizationRequiredError,
)
from authorizations.tests import factories as af
from practice.models import ClinicSettings
from scheduling import series, services
from scheduling.errors import SeriesConflictError
from scheduling.models import Appointment
from scheduling.tests import factories as f
from tests.fixtures import in_clinic


@pytest.fixture
def aba(acme):
    with in_clinic(acme):
        code = f.service_code("97153", 15)
        code.requires_authorization = True
        code.save()
        p = f.practitioner()
        t = f.appointment_type(p, minutes=60, code=code)  # 4 units a visit
        patient = f.patient()
        auth, line = af.authorization(patient, code, units=12)
        yield {"p": p, "t": t, "patient": patient, "line": line, "code": code,
               "day": f.next_weekday(1)}  # fmt: skip


def _book(aba, hour, day=None, **kw):
    return services.appointment_book(
        patient=kw.pop("patient", aba["patient"]),
        practitioner=aba["p"],
        appointment_type=aba["t"],
        start=f.local(day or aba["day"], hour),
        **kw,
    )


def _counters(line):
    line.refresh_from_db()
    return line.units_scheduled, line.units_used


def test_booking_reserves_units_in_the_same_transaction(aba):
    a = _book(aba, 9)
    assert a.unit_reservation.units == 4 and a.unit_reservation.state == "reserved"
    assert _counters(aba["line"]) == (4, 0)


def test_booking_without_units_is_a_409_stating_units_left_and_writes_nothing(aba):
    _book(aba, 9)
    _book(aba, 11)
    with pytest.raises(AuthorizationExhaustedError) as error:
        services.appointment_book(
            patient=aba["patient"], practitioner=aba["p"],
            appointment_type=f.appointment_type(aba["p"], minutes=90, code=aba["code"]),
            start=f.local(aba["day"], 14),
        )  # fmt: skip
    assert error.value.code == "authorization-exhausted"
    assert error.value.extra["units_left"] == 4
    assert Appointment.objects.count() == 2
    assert _counters(aba["line"]) == (8, 0)


def test_cancel_and_no_show_release_and_complete_consumes(aba):
    a, b, c = _book(aba, 9), _book(aba, 11), _book(aba, 14)
    services.appointment_cancel(appointment=a)
    assert _counters(aba["line"]) == (8, 0)
    with time_machine.travel(b.start + timedelta(minutes=10)):
        services.appointment_no_show(appointment=b)
    assert _counters(aba["line"]) == (4, 0)
    with time_machine.travel(c.start + timedelta(minutes=10)):
        services.appointment_complete(appointment=c)
    assert _counters(aba["line"]) == (0, 4)
    assert selectors.ledger_mismatches() == []


def test_reschedule_keeps_the_reservation_inside_the_authorization(aba):
    a = _book(aba, 9)
    reservation = a.unit_reservation_id
    moved = services.appointment_reschedule(
        appointment=a, start=f.local(aba["day"] + timedelta(days=7), 10)
    )
    assert moved.unit_reservation_id == reservation
    assert moved.unit_reservation.service_date == aba["day"] + timedelta(days=7)
    assert _counters(aba["line"]) == (4, 0)


def test_reschedule_after_the_type_lost_its_service_code_keeps_the_units_held(aba):
    a = _book(aba, 9)
    reservation = a.unit_reservation_id
    aba["t"].service_code = None
    aba["t"].save()
    moved = services.appointment_reschedule(
        appointment=Appointment.objects.get(pk=a.pk),
        start=f.local(aba["day"] + timedelta(days=7), 10),
    )
    assert moved.unit_reservation_id == reservation
    assert moved.unit_reservation.units == 4
    assert _counters(aba["line"]) == (4, 0)


def test_reschedule_past_the_end_date_is_refused_and_leaves_the_original(aba):
    a = _book(aba, 9)
    auth = aba["line"].authorization
    beyond = auth.end_date + timedelta(days=3)
    with pytest.raises(AuthorizationRequiredError) as error:
        services.appointment_reschedule(appointment=a, start=f.local(beyond, 10))
    assert "after the end of authorization" in error.value.detail
    a.refresh_from_db()
    assert a.start == f.local(aba["day"], 9) and a.unit_reservation.state == "reserved"
    assert _counters(aba["line"]) == (4, 0)


def test_occurrence_after_the_end_date_is_refused_saying_so(aba):
    auth = aba["line"].authorization
    with pytest.raises(AuthorizationRequiredError) as error:
        _book(aba, 9, day=auth.end_date + timedelta(days=1))
    assert "after the end of authorization" in error.value.detail


def test_warn_policy_books_without_authorization_with_a_warning(aba):
    ClinicSettings.objects.update_or_create(id=1, defaults={"authorization_policy": "warn"})
    stranger = f.patient()
    a = _book(aba, 9, patient=stranger)
    assert a.unit_reservation is None
    assert "No active authorization" in a.authorization_warning


def test_series_books_all_within_the_authorization_or_nothing(aba):
    with pytest.raises(SeriesConflictError) as error:
        series.appointment_series_book(
            patient=aba["patient"], practitioner=aba["p"], appointment_type=aba["t"],
            first_start=f.local(aba["day"], 9), rrule="FREQ=DAILY;COUNT=4",
        )  # fmt: skip
    assert [o["code"] for o in error.value.extra["occurrences"]] == ["authorization-exhausted"]
    assert Appointment.objects.count() == 0 and _counters(aba["line"]) == (0, 0)
    result = series.appointment_series_book(
        patient=aba["patient"], practitioner=aba["p"], appointment_type=aba["t"],
        first_start=f.local(aba["day"], 9), rrule="FREQ=DAILY;COUNT=3",
    )  # fmt: skip
    assert len(result.booked) == 3 and _counters(aba["line"]) == (12, 0)

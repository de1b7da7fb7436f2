from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from authorizations import selectors, services
from authorizations.errors import (
    AuthorizationExhaustedError,
    AuthorizationNotValidError,
    AuthorizationWeeklyCapError,
    ReservationStateError,
)
from authorizations.models import Authorization, AuthorizationLine, UnitReservation
from authorizations.tests import factories as af
from practice.models import ClinicSettings
from scheduling.tests import factories as f
from tests.fixtures import in_clinic


@pytest.fixture
def line(acme):
    with in_clinic(acme):
        code = f.service_code("97153", 15)
        auth, line = af.authorization(f.patient(), code, units=50)
        yield line


def _today():
    return timezone.localdate()


@pytest.mark.parametrize(
    ("minutes", "unit", "rounding", "expected"),
    [
        (60, 15, "up", 4), (50, 15, "up", 4), (50, 15, "nearest", 3), (53, 15, "nearest", 4),
        (50, 15, "down", 3), (10, 15, "down", 1), (45, None, "up", 1),
    ],
)  # fmt: skip
def test_units_for_a_visit_follow_the_clinics_rounding(acme, minutes, unit, rounding, expected):
    with in_clinic(acme):
        code = f.service_code("97155" if unit else "99213", unit)
        assert services.units_for_visit(minutes=minutes, service_code=code, rounding=rounding) == (
            expected
        )


def test_default_rounding_is_up_and_recorded_per_clinic(acme):
    with in_clinic(acme):
        assert ClinicSettings.load().unit_rounding == "up"


def test_ledger_mismatches_finds_counters_that_drifted_from_the_ledger(line):
    services.units_reserve(line=line, units=8, service_date=_today())
    consumed = services.units_reserve(line=line, units=4, service_date=_today())
    services.units_consume(reservation=consumed)
    assert selectors.ledger_mismatches() == []
    AuthorizationLine.objects.filter(pk=line.pk).update(units_scheduled=7)  # behind the ledger
    assert selectors.ledger_mismatches() == [line.pk]
    AuthorizationLine.objects.filter(pk=line.pk).update(units_scheduled=8, units_used=5)
    assert selectors.ledger_mismatches() == [line.pk]
    AuthorizationLine.objects.filter(pk=line.pk).update(units_used=4)
    UnitReservation.objects.filter(pk=consumed.pk).update(state=UnitReservation.State.RELEASED)
    assert selectors.ledger_mismatches() == [line.pk]  # a used unit with no consumed row


def test_reserve_consume_release_keep_counters_equal_to_ledger(line):
    a = services.units_reserve(line=line, units=8, service_date=_today())
    b = services.units_reserve(line=line, units=4, service_date=_today())
    services.units_consume(reservation=a)
    services.units_release(reservation=b)
    line.refresh_from_db()
    assert (line.units_scheduled, line.units_used, line.units_remaining) == (0, 8, 42)
    assert selectors.ledger_mismatches() == []
    # Idempotent repeats, and the refused direction.
    services.units_consume(reservation=a)
    services.units_release(reservation=b)
    with pytest.raises(ReservationStateError):
        services.units_release(reservation=a)
    with pytest.raises(ReservationStateError):
        services.units_consume(reservation=b)
    line.refresh_from_db()
    assert (line.units_scheduled, line.units_used) == (0, 8)


def test_reserving_more_than_left_is_refused_with_units_left_and_nothing_written(line):
    services.units_reserve(line=line, units=45, service_date=_today())
    with pytest.raises(AuthorizationExhaustedError) as error:
        services.units_reserve(line=line, units=10, service_date=_today())
    assert error.value.extra["units_left"] == 5
    assert "5 unit(s) left" in error.value.detail
    assert UnitReservation.objects.filter(line=line).count() == 1
    line.refresh_from_db()
    assert line.units_scheduled == 45


def test_database_refuses_an_overdrawn_line_even_from_raw_sql(line):
    with pytest.raises(IntegrityError, match="authorization_line_not_overdrawn"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE authorizations_authorizationline SET units_scheduled = 51 WHERE id = %s",
                [line.pk],
            )
    with pytest.raises(IntegrityError, match="authorization_line_counters_non_negative"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE authorizations_authorizationline SET units_used = -1 WHERE id = %s",
                [line.pk],
            )


def test_dates_outside_the_authorization_are_refused_saying_so(line):
    auth = line.authorization
    with pytest.raises(AuthorizationNotValidError) as error:
        services.units_reserve(line=line, units=1, service_date=auth.end_date + timedelta(days=1))
    assert "outside authorization" in error.value.detail


def test_weekly_cap(acme):
    with in_clinic(acme):
        _, line = af.authorization(f.patient(), f.service_code(), units=100, weekly_cap=10)
        monday = _today() - timedelta(days=_today().weekday())
        services.units_reserve(line=line, units=6, service_date=monday)
        with pytest.raises(AuthorizationWeeklyCapError) as error:
            services.units_reserve(line=line, units=6, service_date=monday + timedelta(days=3))
        assert error.value.extra["week_units"] == 6
        services.units_reserve(line=line, units=6, service_date=monday + timedelta(days=7))


def test_status_follows_counters_and_dates(line):
    reservation = services.units_reserve(line=line, units=50, service_date=_today())
    line.authorization.refresh_from_db()
    assert line.authorization.status == Authorization.Status.EXHAUSTED
    services.units_release(reservation=reservation)
    line.authorization.refresh_from_db()
    assert line.authorization.status == Authorization.Status.ACTIVE
    later = line.authorization.end_date + timedelta(days=1)
    assert services.authorizations_refresh_all(today=later) == 1
    line.authorization.refresh_from_db()
    assert line.authorization.status == Authorization.Status.EXPIRED


def test_idempotency_key_returns_the_first_reservation(line):
    first = services.units_reserve(line=line, units=3, service_date=_today(), idempotency_key="k1")
    again = services.units_reserve(line=line, units=3, service_date=_today(), idempotency_key="k1")
    assert first.pk == again.pk
    line.refresh_from_db()
    assert line.units_scheduled == 3


def test_alerts_at_threshold_and_near_expiry(acme):
    with in_clinic(acme):
        code = f.service_code()
        auth, line = af.authorization(
            f.patient(), code, units=10, end=_today() + timedelta(days=10), threshold=80
        )
        services.units_reserve(line=line, units=8, service_date=_today())
        fetched = selectors.authorization_list().get(pk=auth.pk)
        kinds = {alert.kind for alert in selectors.authorization_alerts(fetched)}
        assert kinds == {"threshold", "expiring"}
        assert auth in selectors.authorizations_over_threshold()
        assert auth in selectors.authorizations_expiring(within_days=30)
        _, calm = af.authorization(f.patient(), code, units=100)
        assert calm.authorization not in selectors.authorizations_over_threshold()


def test_line_for_visit_prefers_the_authorization_ending_first(acme):
    with in_clinic(acme):
        code = f.service_code()
        patient = f.patient()
        _, later = af.authorization(patient, code, end=_today() + timedelta(days=200))
        _, sooner = af.authorization(patient, code, end=_today() + timedelta(days=20))
        found = selectors.line_for_visit(patient=patient, service_code=code, service_date=_today())
        assert found == sooner
        assert AuthorizationLine.objects.count() == 2
        assert later.pk != sooner.pk

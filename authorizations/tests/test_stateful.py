"""Hypothesis drives reserve / release / consume / use and booking / cancel / complete in random
order; after every step no line is overdrawn and every counter equals its ledger's sum."""

from datetime import timedelta

import pytest
import time_machine
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from authorizations import selectors, services
from authorizations.errors import (
    AuthorizationExhaustedError,
    AuthorizationWeeklyCapError,
    ReservationStateError,
)
from authorizations.models import UnitReservation
from authorizations.tests import factories as af
from clinic.errors import ApplicationError
from scheduling import services as booking
from scheduling.tests import factories as f
from tests.fixtures import in_clinic


def _machine(today, visit_day):
    class Ledger(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            code = f.service_code("97153", 15)
            self.patient = f.patient()
            _, self.line = af.authorization(self.patient, code, units=30, weekly_cap=20)
            self.practitioner = f.practitioner()
            self.type = f.appointment_type(self.practitioner, minutes=45, code=code)  # 3 units
            self.reservations: list[UnitReservation] = []
            self.appointments = []
            self.next_hour = 0

        @rule(units=st.integers(1, 12), day=st.integers(0, 13))
        def reserve(self, units, day):
            try:
                self.reservations.append(
                    services.units_reserve(
                        line=self.line, units=units, service_date=today + timedelta(days=day)
                    )
                )
            except (AuthorizationExhaustedError, AuthorizationWeeklyCapError):
                pass

        @rule(units=st.integers(1, 6))
        def use(self, units):
            try:
                services.units_use(line=self.line, units=units, service_date=today)
            except (AuthorizationExhaustedError, AuthorizationWeeklyCapError):
                pass

        @precondition(lambda self: self.reservations)
        @rule(index=st.integers(0, 1000), consume=st.booleans())
        def settle(self, index, consume):
            reservation = self.reservations[index % len(self.reservations)]
            try:
                if consume:
                    services.units_consume(reservation=reservation)
                else:
                    services.units_release(reservation=reservation)
            except ReservationStateError:
                pass

        @precondition(lambda self: self.next_hour < 8)
        @rule()
        def book(self):
            start = f.local(visit_day, 9 + self.next_hour)
            self.next_hour += 1
            try:
                self.appointments.append(
                    booking.appointment_book(
                        patient=self.patient,
                        practitioner=self.practitioner,
                        appointment_type=self.type,
                        start=start,
                    )
                )
            except ApplicationError:
                pass

        @precondition(lambda self: self.appointments)
        @rule(index=st.integers(0, 100), action=st.sampled_from(["cancel", "complete", "no_show"]))
        def change(self, index, action):
            appointment = self.appointments[index % len(self.appointments)]
            try:
                if action == "cancel":
                    booking.appointment_cancel(appointment=appointment)
                else:
                    with time_machine.travel(appointment.start + timedelta(minutes=5)):
                        getattr(booking, f"appointment_{action}")(appointment=appointment)
            except ApplicationError:
                pass

        @invariant()
        def never_overdrawn_and_ledger_equals_counters(self):
            self.line.refresh_from_db()
            assert 0 <= self.line.units_scheduled and 0 <= self.line.units_used
            assert self.line.units_scheduled + self.line.units_used <= self.line.units_authorized
            assert selectors.ledger_mismatches() == []

    return Ledger


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
def test_ledger_invariants_hold_in_any_order(acme):
    from django.utils import timezone
    from hypothesis.stateful import run_state_machine_as_test

    with in_clinic(acme):
        today = timezone.localdate()
        machine = _machine(today, f.next_weekday(2))
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=25,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            ),
        )

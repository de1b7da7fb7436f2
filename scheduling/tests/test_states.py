"""The appointment's state machine (`scheduling.states.TRANSITIONS`), row by row: each action
from each status (allowed from its `from` statuses only), by whom (the row's permission, and
the visit's own patient where the row lets them, until the late-change deadline), and when
(check-in on the visit's own day in the clinic's zone, complete and no-show from the start).

Every test travels to instants it chooses: a Monday 10:00 visit in acme (America/New_York),
booked the Wednesday before, away from any DST change."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from clinic.errors import PermissionDeniedError
from scheduling import services, states
from scheduling.errors import InvalidTransitionError, LateCancelError
from scheduling.models import Appointment
from scheduling.tests import factories as f
from tests.fixtures import in_clinic

Status = Appointment.Status
MONDAY = date(2027, 2, 8)
BOOKED_AT = f.local(date(2027, 2, 3), 12)  # the Wednesday before
START = f.local(MONDAY, 10)
DEADLINE = START - timedelta(hours=24)  # the clinic's default late-cancel window
NEW_START = f.local(MONDAY + timedelta(days=1), 11)  # where a reschedule moves the visit


@dataclass
class Visit:
    appointment: Appointment
    users: dict  # role -> user; "owner" is the visit's own patient's account


@pytest.fixture
def visit(acme, role_users, make_user) -> Visit:
    owner = make_user(acme, "patient")
    with in_clinic(acme):
        practitioner = f.practitioner(user=role_users["practitioner"])
        kind = f.appointment_type(practitioner, minutes=60)
        with time_machine.travel(BOOKED_AT, tick=False):
            appointment = services.appointment_book(
                patient=f.patient(user=owner),
                practitioner=practitioner,
                appointment_type=kind,
                start=START,
                booked_by=role_users["front_desk"],
            )
        yield Visit(appointment, {**role_users, "owner": owner})


def _in_status(appointment: Appointment, status: str) -> Appointment:
    """The visit put straight into `status` (what the table is asked about, not how it got
    there)."""
    extra = {"cancelled_at": BOOKED_AT} if status == Status.CANCELLED else {}
    Appointment.objects.filter(pk=appointment.pk).update(status=status, **extra)
    return Appointment.objects.select_related("patient").get(pk=appointment.pk)


def _do(action: str, appointment: Appointment, by) -> Appointment:
    """The service that performs `action`."""
    if action == states.RESCHEDULE:
        return services.appointment_reschedule(appointment=appointment, start=NEW_START, by=by)
    run: Callable = {
        states.CHECK_IN: services.appointment_check_in,
        states.COMPLETE: services.appointment_complete,
        states.NO_SHOW: services.appointment_no_show,
        states.CANCEL: services.appointment_cancel,
    }[action]
    return run(appointment=appointment, by=by)


# A moment each row's `when` allows, for the tests of statuses and roles.
ALLOWED_AT = {
    states.CHECK_IN: START - timedelta(minutes=30),
    states.COMPLETE: START + timedelta(minutes=5),
    states.NO_SHOW: START + timedelta(minutes=5),
    states.CANCEL: DEADLINE - timedelta(hours=1),
    states.RESCHEDULE: DEADLINE - timedelta(hours=1),
}


def test_the_table_has_a_row_for_every_status_change_and_a_moment_for_each():
    assert set(states.TRANSITIONS) == set(ALLOWED_AT)
    assert {row.target for row in states.TRANSITIONS.values()} == set(Status.values)
    for name, row in states.TRANSITIONS.items():
        assert row.action == name and row.sources <= set(Status.values)
        assert row.permission.startswith("scheduling.") and row.permission.endswith("_appointment")


# --- From which statuses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "status"),
    [(action, status) for action in states.TRANSITIONS for status in Status.values],
)
def test_each_row_changes_its_from_statuses_only(visit, action, status):
    row = states.TRANSITIONS[action]
    appointment = _in_status(visit.appointment, status)
    desk = visit.users["front_desk"]
    with time_machine.travel(ALLOWED_AT[action], tick=False):
        offered = states.transition_allowed(appointment, action, user=desk, now=timezone.now())
        assert offered is (status in row.sources)
        if status in row.sources:
            changed = _do(action, appointment, desk)
            assert changed.status == row.target
            assert Appointment.objects.get(pk=appointment.pk).status == row.target
        else:
            with pytest.raises(InvalidTransitionError) as refused:
                _do(action, appointment, desk)
            assert refused.value.status == 409 and refused.value.code == "invalid-transition"
            assert Appointment.objects.get(pk=appointment.pk).status == status


# --- By whom --------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", states.TRANSITIONS)
def test_each_row_is_offered_to_staff_holding_its_permission_only(visit, action):
    row = states.TRANSITIONS[action]
    desk, biller = visit.users["front_desk"], visit.users["biller"]
    assert desk.has_perm(row.permission) and not biller.has_perm(row.permission)
    with time_machine.travel(ALLOWED_AT[action], tick=False):
        now = timezone.now()
        assert states.transition_allowed(visit.appointment, action, user=desk, now=now)
        assert not states.transition_allowed(visit.appointment, action, user=biller, now=now)
        for role in ("practitioner", "integrator", "clinic_admin", "patient"):
            user = visit.users[role]
            offered = states.transition_allowed(visit.appointment, action, user=user, now=now)
            assert offered is user.has_perm(row.permission), role


@pytest.mark.parametrize("action", states.TRANSITIONS)
def test_the_visits_own_patient_may_only_what_the_row_lets_patients_do(visit, action):
    row = states.TRANSITIONS[action]
    owner = visit.users["owner"]
    assert not owner.has_perm(row.permission)
    with time_machine.travel(ALLOWED_AT[action], tick=False):
        offered = states.transition_allowed(
            visit.appointment, action, user=owner, now=timezone.now()
        )
        assert offered is row.patient_online
        if row.patient_online:
            assert _do(action, visit.appointment, owner).status == row.target
        else:
            with pytest.raises(PermissionDeniedError):
                _do(action, visit.appointment, owner)
            assert Appointment.objects.get(pk=visit.appointment.pk).status == Status.BOOKED


# --- When -----------------------------------------------------------------------------------------


def _on(day_offset: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A wall-clock moment in New York, `day_offset` days from the visit's Monday."""
    moment = f.local(MONDAY + timedelta(days=day_offset), hour, minute)
    return moment + timedelta(seconds=second)


WHEN_CASES = [
    # check-in: the visit's own day in the clinic's zone, whatever the UTC date
    (states.CHECK_IN, "front_desk", _on(-2, 12), False),  # the Saturday before
    (states.CHECK_IN, "front_desk", _on(-1, 23, 59, 59), False),  # Sunday night: Monday in UTC
    (states.CHECK_IN, "front_desk", _on(0, 0), True),  # Monday 00:00
    (states.CHECK_IN, "front_desk", START, True),
    (states.CHECK_IN, "front_desk", _on(0, 21), True),  # Monday evening: Tuesday in UTC
    (states.CHECK_IN, "front_desk", _on(0, 23, 59, 59), True),
    (states.CHECK_IN, "front_desk", _on(1, 0), False),  # Tuesday 00:00
    # complete and no-show: from the start on
    (states.COMPLETE, "front_desk", START - timedelta(seconds=1), False),
    (states.COMPLETE, "front_desk", START, True),
    (states.COMPLETE, "practitioner", START + timedelta(hours=3), True),  # their own visit
    (states.NO_SHOW, "front_desk", START - timedelta(seconds=1), False),
    (states.NO_SHOW, "front_desk", START, True),
    (states.NO_SHOW, "front_desk", _on(3, 9), True),
    # cancel and reschedule: staff any time; the visit's own patient until the deadline,
    # the deadline itself included
    (states.CANCEL, "front_desk", START - timedelta(hours=1), True),
    (states.CANCEL, "front_desk", START + timedelta(hours=1), True),
    (states.CANCEL, "owner", DEADLINE - timedelta(hours=1), True),
    (states.CANCEL, "owner", DEADLINE, True),
    (states.CANCEL, "owner", DEADLINE + timedelta(seconds=1), False),
    (states.RESCHEDULE, "front_desk", START - timedelta(hours=1), True),
    (states.RESCHEDULE, "owner", DEADLINE, True),
    (states.RESCHEDULE, "owner", DEADLINE + timedelta(seconds=1), False),
]


@pytest.mark.parametrize(
    ("action", "who", "moment", "allowed"),
    WHEN_CASES,
    ids=[f"{a}-{who}-{m.isoformat()}" for a, who, m, _ in WHEN_CASES],
)
def test_each_row_is_allowed_only_when_its_rule_says(visit, action, who, moment, allowed):
    row = states.TRANSITIONS[action]
    user = visit.users[who]
    appointment = visit.appointment
    with time_machine.travel(moment, tick=False):
        offered = states.transition_allowed(appointment, action, user=user, now=timezone.now())
        assert offered is allowed
        if allowed:
            assert _do(action, appointment, user).status == row.target
            return
        expected = LateCancelError if who == "owner" else InvalidTransitionError
        with pytest.raises(expected) as refused:
            _do(action, appointment, user)
    assert refused.value.status == 409
    assert Appointment.objects.get(pk=appointment.pk).status == Status.BOOKED


def test_a_check_in_on_another_day_says_which_day_it_is_for(visit):
    with time_machine.travel(_on(-2, 12), tick=False), pytest.raises(InvalidTransitionError) as e:
        services.appointment_check_in(appointment=visit.appointment, by=visit.users["front_desk"])
    assert "Monday, February 8, 2027" in e.value.detail and "America/New_York" in e.value.detail


def test_late_staff_cancels_are_marked_late_and_the_window_is_one_definition(visit):
    assert states.change_deadline(visit.appointment) == DEADLINE
    assert not states.is_late(visit.appointment, DEADLINE)
    assert states.is_late(visit.appointment, DEADLINE + timedelta(microseconds=1))
    with time_machine.travel(DEADLINE + timedelta(minutes=1), tick=False):
        cancelled = services.appointment_cancel(
            appointment=visit.appointment, by=visit.users["front_desk"], reason="ill"
        )
    assert cancelled.is_late_cancel

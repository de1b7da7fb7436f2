"""Rows first: what each booking change writes, in its own transaction, and when reminders are
due in the visit's zone (DST changes of New York and Dublin)."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.db import IntegrityError, transaction

from notifications.models import Channel, ChannelOptOut, Kind, Notification
from notifications.planning import reminder_due, reminders_plan
from scheduling import services
from scheduling.tests import factories as f
from tests.fixtures import in_clinic

from .factories import book, rule, visit_world

Status = Notification.Status


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("clinic_name", "tz", "booked_at", "day", "due_48h", "due_2h"),
    [
        # New York springs forward on Sunday 14 March 2027: 10:00 EDT Monday is 14:00 UTC, and
        # 48 h before on the wall clock is 10:00 EST Saturday, 15:00 UTC (49 elapsed hours).
        ("acme", "America/New_York", _utc(2027, 3, 10, 12), date(2027, 3, 15),
         _utc(2027, 3, 13, 15), _utc(2027, 3, 15, 12)),
        # ... and falls back on Sunday 7 November 2027 (47 elapsed hours).
        ("acme", "America/New_York", _utc(2027, 11, 3, 12), date(2027, 11, 8),
         _utc(2027, 11, 6, 14), _utc(2027, 11, 8, 13)),
        # Dublin springs forward on Sunday 28 March 2027: 10:00 IST Monday is 09:00 UTC, 48 h
        # before is 10:00 GMT Saturday, 10:00 UTC.
        ("globex", "Europe/Dublin", _utc(2027, 3, 24, 12), date(2027, 3, 29),
         _utc(2027, 3, 27, 10), _utc(2027, 3, 29, 7)),
        # ... and falls back on Sunday 31 October 2027.
        ("globex", "Europe/Dublin", _utc(2027, 10, 27, 12), date(2027, 11, 1),
         _utc(2027, 10, 30, 9), _utc(2027, 11, 1, 8)),
    ],
)  # fmt: skip
def test_reminders_are_due_at_the_offsets_on_the_visits_wall_clock_across_dst(
    request, clinic_name, tz, booked_at, day, due_48h, due_2h
):
    clinic = request.getfixturevalue(clinic_name)
    with in_clinic(clinic), time_machine.travel(booked_at, tick=False):
        _, practitioner, kind, patient = visit_world(tz)
        two_days, two_hours = rule(48 * 60), rule(120)
        visit = book(practitioner, kind, patient, day, 10, tz)
        due = dict(
            Notification.objects.filter(appointment=visit, kind=Kind.REMINDER).values_list(
                "rule_id", "due_at"
            )
        )
    assert due == {two_days.pk: due_48h, two_hours.pk: due_2h}


def test_reminder_due_counts_only_whole_days_on_the_wall_clock():
    from zoneinfo import ZoneInfo

    start = _utc(2027, 3, 15, 14)  # 10:00 EDT
    ny = ZoneInfo("America/New_York")
    assert reminder_due(start=start, offset_minutes=24 * 60 + 30, zone=ny) == _utc(
        2027, 3, 14, 13, 30
    )  # Sunday 10:00 EDT less 30 minutes


def test_a_booking_writes_its_confirmation_and_reminders_in_its_transaction(acme):
    with in_clinic(acme):
        _, practitioner, kind, patient = visit_world()
        rule(48 * 60), rule(120, channel=Channel.SMS)
        ChannelOptOut.objects.create(patient=patient, channel=Channel.SMS)
        day = f.next_weekday(2)
        visit = book(practitioner, kind, patient, day, 10, "America/New_York")
        rows = {
            (row.kind, row.channel): (row.status, row.reason)
            for row in Notification.objects.filter(appointment=visit)
        }
    assert rows[(Kind.CONFIRMATION, Channel.EMAIL)] == (Status.PENDING, "")
    assert rows[(Kind.CONFIRMATION, Channel.SMS)][0] == Status.SKIPPED  # opted out
    assert "opted out" in rows[(Kind.CONFIRMATION, Channel.SMS)][1]
    assert rows[(Kind.REMINDER, Channel.EMAIL)] == (Status.PENDING, "")
    assert (Kind.REMINDER, Channel.SMS) in rows  # planned; skipped when it is sent


def test_a_refused_booking_leaves_no_notification(acme):
    with in_clinic(acme):
        _, practitioner, kind, patient = visit_world()
        rule(120)
        day = f.next_weekday(2)
        book(practitioner, kind, patient, day, 10, "America/New_York")
        before = Notification.objects.count()
        with pytest.raises(Exception):  # noqa: B017, PT011 - the 409 of the overlap
            book(practitioner, kind, patient, day, 10, "America/New_York")
        assert Notification.objects.count() == before


def test_a_move_skips_the_old_reminders_and_plans_the_new_ones(acme):
    with in_clinic(acme):
        _, practitioner, kind, patient = visit_world()
        two_hours = rule(120)
        day = f.next_weekday(2)
        visit = book(practitioner, kind, patient, day, 10, "America/New_York")
        old_start = visit.start
        visit = services.appointment_reschedule(
            appointment=visit, start=old_start + timedelta(hours=3)
        )
        reminders = Notification.objects.filter(appointment=visit, kind=Kind.REMINDER)
        assert {(r.start, r.status) for r in reminders} == {
            (old_start, Status.SKIPPED),
            (visit.start, Status.PENDING),
        }
        [new] = reminders.filter(status=Status.PENDING)
        assert (new.rule_id, new.due_at) == (two_hours.pk, visit.start - timedelta(hours=2))
        assert Notification.objects.filter(appointment=visit, kind=Kind.CHANGE).count() == 2
        # cancelled: nothing pending is left to send
        services.appointment_cancel(appointment=visit)
        assert not Notification.objects.filter(
            appointment=visit, kind=Kind.REMINDER, status=Status.PENDING
        ).exists()
        assert Notification.objects.filter(appointment=visit, kind=Kind.CANCELLATION).exists()


def test_one_reminder_per_appointment_rule_and_start_is_the_databases(acme):
    with in_clinic(acme):
        _, practitioner, kind, patient = visit_world()
        two_hours = rule(120)
        day = f.next_weekday(2)
        visit = book(practitioner, kind, patient, day, 10, "America/New_York")
        assert reminders_plan() == 0  # planned with the booking already
        with pytest.raises(IntegrityError), transaction.atomic():
            Notification.objects.create(
                appointment=visit, patient=patient, kind=Kind.REMINDER, channel=Channel.EMAIL,
                rule=two_hours, start=visit.start, due_at=visit.start,
            )  # fmt: skip


def test_the_beat_plans_reminders_of_a_rule_added_after_the_booking(acme):
    with in_clinic(acme):
        _, practitioner, kind, patient = visit_world()
        day = f.next_weekday(2)
        visit = book(practitioner, kind, patient, day, 10, "America/New_York")
        rule(48 * 60)
        assert reminders_plan() == 1
        assert reminders_plan() == 0
        assert Notification.objects.filter(appointment=visit, kind=Kind.REMINDER).count() == 1

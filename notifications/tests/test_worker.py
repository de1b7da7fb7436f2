"""Row-first delivery through real Celery workers and Redis: reminders due at the offsets in the
visit's zone across DST (New York and Dublin), only for a visit's current time after a move,
sent once under two overlapping sweeps, and exactly once when the sender is SIGKILLed mid-send.

The workers read the run's clock; the tests choose "now" for the sweep (`notifications_due`),
which decides what is due: the send itself checks the row, not the clock."""

import os
import re
import signal
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from notifications.delivery import notifications_due
from notifications.models import Kind, Notification
from scheduling import services
from tests.fixtures import _clinic, _wait_for_worker, in_clinic, start_worker, stop_worker

from .factories import book, rule, visit_world

Status = Notification.Status


@pytest.fixture
def queue(settings) -> str:
    settings.NOTIFICATIONS_QUEUE = f"{os.environ['CELERY_QUEUE']}-notify-{time.monotonic_ns()}"
    return settings.NOTIFICATIONS_QUEUE


def _worker(queue: str, name: str, mail: Path, delay: float = 0.0):
    proc = start_worker(
        "--concurrency=1", "--pool=solo", name=name, queue=queue,
        env={
            "NOTIFICATION_SEND_DELAY": str(delay),
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(mail),
        },
    )  # fmt: skip
    _wait_for_worker(name=name)
    return proc


def _messages(mail: Path) -> list[str]:
    """Every message the file backend wrote (a file per connection, 79 dashes between)."""
    texts = [path.read_text() for path in sorted(mail.glob("*.log"))]
    return [m for text in texts for m in re.split(r"\n-{79}\n", text) if "Subject:" in m]


def _wait(predicate, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _status(pk: int) -> str:
    return Notification.objects.values_list("status", flat=True).get(pk=pk)


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("slug", "tz", "booked_at", "day", "due", "written"),
    [
        ("acme", "America/New_York", _utc(2027, 3, 10, 12), date(2027, 3, 15),
         _utc(2027, 3, 13, 15), ("10:00 AM", "New York time (EDT)")),
        ("globex", "Europe/Dublin", _utc(2027, 3, 24, 12), date(2027, 3, 29),
         _utc(2027, 3, 27, 10), ("10:00", "Dublin time (IST)")),
    ],
)  # fmt: skip
def test_a_worker_sends_the_reminder_when_due_in_the_visits_zone_across_dst(
    committed, queue, tmp_path, slug, tz, booked_at, day, due, written
):
    clinic = _clinic(slug)
    worker = _worker(queue, f"remind-{slug}", tmp_path)
    try:
        with in_clinic(clinic):
            with time_machine.travel(booked_at, tick=False):
                _, practitioner, kind, patient = visit_world(tz)
                rule(48 * 60)
                visit = book(practitioner, kind, patient, day, 10, tz)
            [reminder] = Notification.objects.filter(appointment=visit, kind=Kind.REMINDER)
            assert reminder.due_at == due
            assert reminder.pk not in notifications_due(
                now=due - timedelta(minutes=1), stuck_after=timedelta(minutes=5)
            )
            assert reminder.pk in notifications_due(now=due, stuck_after=timedelta(minutes=5))
            _wait(lambda: _status(reminder.pk) == Status.SENT, "the reminder was never sent")
    finally:
        stop_worker(worker)
    reminders = [m for m in _messages(tmp_path) if "Subject: Reminder" in m]
    assert len(reminders) == 1
    assert all(text in reminders[0] for text in written), reminders[0]


def test_a_moved_visit_is_reminded_of_its_new_time_only_under_overlapping_sweeps(
    committed, queue, tmp_path
):
    clinic = _clinic("acme")
    worker = _worker(queue, "remind-moved", tmp_path)
    stuck = timedelta(minutes=5)
    try:
        with in_clinic(clinic):
            with time_machine.travel(_utc(2027, 3, 10, 12), tick=False):
                _, practitioner, kind, patient = visit_world()
                rule(120)
                visit = book(practitioner, kind, patient, date(2027, 3, 16), 10, "America/New_York")
                [old] = Notification.objects.filter(appointment=visit, kind=Kind.REMINDER)
                visit = services.appointment_reschedule(
                    appointment=visit, start=visit.start + timedelta(hours=4)
                )
            [new] = Notification.objects.filter(
                appointment=visit, kind=Kind.REMINDER, status=Status.PENDING
            )
            assert (old.due_at, new.due_at) == (_utc(2027, 3, 16, 12), _utc(2027, 3, 16, 16))
            assert old.pk not in notifications_due(now=old.due_at, stuck_after=stuck)
            # two beats overlapping: the first queues the reminder, the second leaves it
            first = notifications_due(now=new.due_at, stuck_after=stuck)
            second = notifications_due(now=new.due_at, stuck_after=stuck)
            assert new.pk in first and new.pk not in second
            _wait(lambda: _status(new.pk) == Status.SENT, "the reminder was never sent")
            time.sleep(1)  # a second send would have landed by now
            assert _status(old.pk) == Status.SKIPPED
            assert Notification.objects.get(pk=new.pk).attempts == 1
    finally:
        stop_worker(worker)
    reminders = [m for m in _messages(tmp_path) if "Subject: Reminder" in m]
    assert len(reminders) == 1
    assert "2:00 PM" in reminders[0] and "10:00 AM" not in reminders[0]


def test_a_sender_killed_mid_send_then_the_sweep_sends_exactly_once(committed, queue, tmp_path):
    clinic = _clinic("acme")
    doomed = _worker(queue, "doomed-sender", tmp_path, delay=3.0)
    with in_clinic(clinic):
        _, practitioner, kind, patient = visit_world()
        from scheduling.tests import factories as f

        visit = book(practitioner, kind, patient, f.next_weekday(2), 10, "America/New_York")
        row = Notification.objects.get(appointment=visit, kind=Kind.CONFIRMATION, channel="email")
        _wait(lambda: _status(row.pk) == Status.SENDING, "the send never started")
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait()
    rescuer = _worker(queue, "rescuer-sender", tmp_path)
    try:
        with in_clinic(clinic):
            assert _status(row.pk) == Status.SENDING  # what the crash left
            # the beat, a minute after the crash, with a lease shorter than that
            later = timezone.now() + timedelta(minutes=1)
            assert row.pk in notifications_due(now=later, stuck_after=timedelta(seconds=30))
            _wait(lambda: _status(row.pk) == Status.SENT, "the rescuer never sent it")
            # a later sweep finds nothing to redo
            assert row.pk not in notifications_due(now=later, stuck_after=timedelta(0))
            time.sleep(1.5)
            sent = Notification.objects.get(pk=row.pk)
    finally:
        stop_worker(rescuer)
    assert (sent.status, sent.attempts) == (Status.SENT, 2)
    mine = [m for m in _messages(tmp_path) if str(sent.uid) in m]
    assert len(mine) == 1


def test_the_beat_sends_due_rows_in_batches_each_row_once(committed, queue, tmp_path, settings):
    """120 rows due: the sweep queues three batch tasks (50, 50, 20) sharing one email
    connection each; a second, overlapping beat queues none of them again, and every row is
    sent once."""
    settings.NOTIFICATION_SEND_BATCH = 50
    clinic = _clinic("acme")
    worker = _worker(queue, "batch-sender", tmp_path)
    try:
        with in_clinic(clinic):
            _, practitioner, kind, patient = visit_world()
            from scheduling.tests import factories as f

            visit = book(practitioner, kind, patient, f.next_weekday(2), 10, "America/New_York")
            now = timezone.now()
            rows = Notification.objects.bulk_create(
                Notification(
                    appointment=visit,
                    patient=patient,
                    kind=Kind.CONFIRMATION,
                    channel="email",
                    start=visit.start,
                    due_at=now - timedelta(minutes=1),
                )  # fmt: skip
                for _ in range(120)
            )
            ids = {row.pk for row in rows}
            first = notifications_due(now=now, stuck_after=timedelta(minutes=5))
            second = notifications_due(now=now, stuck_after=timedelta(minutes=5))
            assert ids <= set(first)
            assert not ids & set(second)  # an overlapping beat queues none of them again
            done = Notification.objects.filter(pk__in=ids, status=Status.SENT)
            _wait(lambda: done.count() == 120, "the batches were never all sent", timeout=90)
            time.sleep(1)  # a second send would have landed by now
            attempts = set(
                Notification.objects.filter(pk__in=ids).values_list("attempts", flat=True)
            )
            uids = {
                str(u)
                for u in Notification.objects.filter(pk__in=ids).values_list("uid", flat=True)
            }
    finally:
        stop_worker(worker)
    assert attempts == {1}
    mine = [m for m in _messages(tmp_path) if any(uid in m for uid in uids)]
    assert len(mine) == 120


def test_a_rule_saved_plans_the_reminders_of_visits_already_booked(committed, queue, tmp_path):
    """No beat needed: saving a reminder rule queues the planning in its clinic, and the beat
    (every minute) visits only the clinics with rows due (one query for them all)."""
    from notifications.delivery import clinics_with_due_notifications

    clinic = _clinic("acme")
    worker = _worker(queue, "planner", tmp_path)
    try:
        with in_clinic(clinic):
            _, practitioner, kind, patient = visit_world()
            from scheduling.tests import factories as f

            visit = book(practitioner, kind, patient, f.next_weekday(2), 10, "America/New_York")
            reminders = Notification.objects.filter(appointment=visit, kind=Kind.REMINDER)
            assert not reminders.exists()  # no rule when it was booked
            rule(48 * 60)  # committed: its clinic's planning is queued
            _wait(reminders.exists, "the rule's reminders were never planned")
            [reminder] = reminders
            stuck = timedelta(minutes=5)
            due = clinics_with_due_notifications(
                ["acme", "public"], now=reminder.due_at, stuck_after=stuck
            )
            assert due == ["acme"]  # public has no notifications table: never visited
    finally:
        stop_worker(worker)

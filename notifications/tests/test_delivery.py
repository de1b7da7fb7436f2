"""Sending a row (in this process: the worker tests are test_worker.py): the email with its
.ics and signed links in the clinic's formats and the visit's zone, SMS through the adapter,
skips, retries; and the signed links' refusals."""

import json
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection
from django.utils import timezone

from notifications.delivery import DeliveryError, notification_send
from notifications.links import LinkProblem, action_link_check, action_link_use, action_links_create
from notifications.models import ActionLink, Channel, ChannelOptOut, Kind, Notification
from notifications.sms import TwilioSmsBackend
from practice.models import ClinicSettings
from scheduling import services
from scheduling.models import Appointment
from scheduling.tests import factories as f
from tests.fixtures import ClinicClient, in_clinic

from .factories import book, rule, visit_world

Status = Notification.Status


class RefusingBackend(BaseEmailBackend):
    def send_messages(self, messages):
        raise OSError("the mail server refused the connection")


def _confirmation(visit, channel=Channel.EMAIL) -> Notification:
    return Notification.objects.get(appointment=visit, kind=Kind.CONFIRMATION, channel=channel)


def test_a_confirmation_goes_out_once_with_the_ics_and_signed_links_in_the_visits_zone(acme):
    with in_clinic(acme):
        _, practitioner, kind, patient = visit_world("America/Chicago")
        visit = book(practitioner, kind, patient, f.next_weekday(2), 10, "America/Chicago")
        row = _confirmation(visit)
        assert notification_send(notification_id=row.pk) == "sent"
        assert notification_send(notification_id=row.pk) == "not-pending"
        row.refresh_from_db()
    assert len(mail.outbox) == 1
    [message] = mail.outbox
    assert message.to == ["robin@example.test"]
    assert "10:00 AM" in message.body and "Chicago time (C" in message.body  # not New York's
    assert "/n/" in message.body and "Confirm:" in message.body
    [(name, content, mimetype)] = message.attachments
    assert (name, mimetype) == ("visit.ics", "text/calendar")
    assert b"BEGIN:VEVENT" in (content if isinstance(content, bytes) else content.encode())
    assert (row.status, row.attempts, row.recipient) == (Status.SENT, 1, "robin@example.test")
    assert row.provider_id == message.extra_headers["Message-ID"]
    assert str(row.uid) in row.provider_id


def test_an_irish_clinic_writes_day_month_and_a_24_hour_clock(globex):
    with in_clinic(globex):
        ClinicSettings.objects.update_or_create(
            id=1, defaults={"locale": "en-IE", "currency": "EUR"}
        )
        _, practitioner, kind, patient = visit_world("Europe/Dublin")
        visit = book(practitioner, kind, patient, f.next_weekday(2), 15, "Europe/Dublin")
        notification_send(notification_id=_confirmation(visit).pk)
    [message] = mail.outbox
    assert "15:00" in message.body and "PM" not in message.body
    assert "Dublin time" in message.body


def test_a_reminder_for_a_start_the_visit_left_is_skipped_not_sent(acme):
    with in_clinic(acme):
        _, practitioner, kind, patient = visit_world()
        rule(120)
        visit = book(practitioner, kind, patient, f.next_weekday(2), 10, "America/New_York")
        [stale] = Notification.objects.filter(appointment=visit, kind=Kind.REMINDER)
        # a row planned for a start the visit has left (the send itself checks, whatever the
        # receivers did)
        Notification.objects.filter(pk=stale.pk).update(start=visit.start - timedelta(hours=1))
        assert notification_send(notification_id=stale.pk) == "skipped"
        stale.refresh_from_db()
    assert stale.status == Status.SKIPPED and "moved" in stale.reason
    assert mail.outbox == []


def test_an_sms_goes_through_the_adapter_and_an_opt_out_is_kept(acme, settings, tmp_path):
    settings.SMS_BACKEND = "notifications.sms.FileSmsBackend"
    settings.SMS_FILE_PATH = str(tmp_path)
    with in_clinic(acme):
        _, practitioner, kind, patient = visit_world(phone="+12125550100")
        visit = book(practitioner, kind, patient, f.next_weekday(2), 10, "America/New_York")
        row = _confirmation(visit, Channel.SMS)
        assert notification_send(notification_id=row.pk) == "sent"
        row.refresh_from_db()
    [line] = (tmp_path / "sms.jsonl").read_text().splitlines()
    sent = json.loads(line)
    assert sent["to"] == "+12125550100" and sent["key"] == str(row.uid)
    assert "10:00 AM" in sent["body"] and row.provider_id == f"file-{row.uid}"


def test_the_twilio_adapter_builds_the_messages_request_without_sending_it():
    backend = TwilioSmsBackend("AC123", "secret", "+15550001111")
    outgoing = backend.request_for(to="+12125550100", body="Hello", idempotency_key="k-1")
    assert outgoing.full_url == "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
    assert outgoing.get_method() == "POST"
    assert parse_qs(outgoing.data.decode()) == {
        "To": ["+12125550100"], "From": ["+15550001111"], "Body": ["Hello"],
    }  # fmt: skip
    assert outgoing.headers["Authorization"].startswith("Basic ")
    assert outgoing.headers["I-twilio-idempotency-token"] == "k-1"


def test_a_refusal_is_pending_again_for_the_retry_then_failed(acme, settings):
    settings.EMAIL_BACKEND = "notifications.tests.test_delivery.RefusingBackend"
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    with in_clinic(acme):
        _, practitioner, kind, patient = visit_world()
        visit = book(practitioner, kind, patient, f.next_weekday(2), 10, "America/New_York")
        row = _confirmation(visit)
        with pytest.raises(DeliveryError):
            notification_send(notification_id=row.pk)
        row.refresh_from_db()
        assert (row.status, row.attempts) == (Status.PENDING, 1)
        assert "refused" in row.reason
        assert notification_send(notification_id=row.pk) == "failed"
        row.refresh_from_db()
        assert (row.status, row.attempts) == (Status.FAILED, 2)


# --- Signed links ---------------------------------------------------------------------------------


def _links(visit) -> dict[str, str]:
    return action_links_create(appointment=visit, now=timezone.now())


def _token(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def test_a_link_refuses_tampering_reuse_expiry_a_move_and_another_clinic(acme, globex):
    with in_clinic(globex):
        _, practitioner, kind, patient = visit_world("Europe/Dublin")
        foreign = _links(book(practitioner, kind, patient, f.next_weekday(2), 11, "Europe/Dublin"))
    with in_clinic(acme):
        _, practitioner, kind, patient = visit_world()
        visit = book(practitioner, kind, patient, f.next_weekday(2), 10, "America/New_York")
        links = _links(visit)
        confirm = _token(links["confirm"])

        def refusal(token: str, now=None) -> str:
            with pytest.raises(LinkProblem) as caught:
                action_link_use(token=token, now=now or timezone.now())
            return caught.value.code

        tampered = confirm[:-2] + ("AA" if not confirm.endswith("AA") else "BB")
        assert refusal(tampered) == "tampered"
        assert refusal(_token(foreign["confirm"])) == "other-clinic"
        assert action_link_use(token=confirm).link.action == "confirm"
        assert refusal(confirm) == "used"
        reschedule = _token(links["reschedule"])
        assert refusal(reschedule, now=visit.start + timedelta(minutes=1)) == "expired"
        services.appointment_reschedule(appointment=visit, start=visit.start + timedelta(hours=2))
        assert refusal(reschedule) == "moved"
        assert ActionLink.objects.filter(used_at__isnull=False).count() == 1


def test_the_link_page_explains_itself_and_cancels_on_post_only(acme):
    with in_clinic(acme):
        _, practitioner, kind, patient = visit_world()
        visit = book(practitioner, kind, patient, f.next_weekday(2), 10, "America/New_York")
        cancel = _links(visit)["cancel"]
    client = ClinicClient(acme)
    shown = client.get(cancel)
    assert shown.status_code == 200 and b'method="post"' in shown.content
    with in_clinic(acme):
        assert Appointment.objects.get(pk=visit.pk).status == "booked"  # a GET does nothing
    done = client.post(cancel)
    assert done.status_code == 200 and b'data-done="cancel"' in done.content
    with in_clinic(acme):
        assert Appointment.objects.get(pk=visit.pk).status == "cancelled"
    again = client.post(cancel)
    assert again.status_code == 410 and b'data-problem="used"' in again.content
    assert client.get(cancel[:-3] + "xx/").status_code == 400


def test_a_link_expires_with_its_hours(acme, settings):
    settings.NOTIFICATION_LINK_HOURS = 1
    with in_clinic(acme):
        _, practitioner, kind, patient = visit_world()
        visit = book(practitioner, kind, patient, f.next_weekday(2), 10, "America/New_York")
        token = _token(_links(visit)["confirm"])
        assert action_link_check(token=token, now=timezone.now()).appointment == visit
        with time_machine.travel(timezone.now() + timedelta(hours=1, seconds=1)):
            with pytest.raises(LinkProblem) as caught:
                action_link_use(token=token)
    assert caught.value.code == "expired"


def test_a_batch_sends_skips_and_hands_back_refusals_with_a_handful_of_statements(
    acme, settings, django_assert_max_num_queries
):
    """`notifications_send_batch` (the beat's batches): the same outcomes as one by one, in a
    number of statements that does not grow with the batch."""
    from notifications.delivery import notifications_send_batch

    with in_clinic(acme):
        _, practitioner, kind, patient = visit_world(phone="+1 212 555 0100")
        day = f.next_weekday(2)
        visits = [
            book(practitioner, kind, patient, day, hour, "America/New_York")
            for hour in (9, 11, 13, 15)
        ]
        cancelled = services.appointment_cancel(appointment=visits[3])
        ChannelOptOut.objects.create(patient=patient, channel=Channel.SMS)
        ids = list(
            Notification.objects.filter(kind=Kind.CONFIRMATION)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        assert len(ids) == 8  # 4 visits x (email, sms)
        with django_assert_max_num_queries(12):
            outcomes, retry = notifications_send_batch(notification_ids=[*ids, ids[0]])
        assert outcomes == {"not-pending": 0, "sent": 3, "skipped": 5} and retry == []
        rows = Notification.objects.filter(pk__in=ids)
        assert set(rows.filter(status=Status.SENT).values_list("appointment_id", flat=True)) == {
            v.pk for v in visits[:3]
        }
        assert not rows.filter(status=Status.SENT, channel="sms").exists()  # opted out
        assert rows.get(appointment=cancelled, channel="email").reason == "The visit is cancelled."
        assert set(rows.values_list("attempts", flat=True)) == {1}
        again, _ = notifications_send_batch(notification_ids=ids)
        assert again == {"not-pending": 8}
        assert len(mail.outbox) == 3
        assert all("/n/" in m.body and m.attachments for m in mail.outbox)
        assert len({m.body for m in mail.outbox}) == 3  # each visit its own links

        settings.EMAIL_BACKEND = "notifications.tests.test_delivery.RefusingBackend"
        later = book(practitioner, kind, patient, day, 16, "America/New_York")
        row = _confirmation(later)
        outcomes, retry = notifications_send_batch(notification_ids=[row.pk])
        row.refresh_from_db()
        assert retry == [row.pk] and (row.status, row.attempts) == (Status.PENDING, 1)


def test_the_sweep_queues_every_due_row_a_page_at_a_time(acme, settings, monkeypatch):
    """A backlog larger than a page (`NOTIFICATION_SWEEP_BATCH`) is queued whole by one sweep,
    in pages: the 48-hour reminders of a busy clinic's morning are not held to a page a minute."""
    from notifications import delivery

    settings.NOTIFICATION_SWEEP_BATCH = 2
    pages: list[list[int]] = []
    monkeypatch.setattr(delivery, "notifications_queue", pages.append)
    with in_clinic(acme):
        _, practitioner, kind, patient = visit_world("America/New_York")
        for hour in (9, 10, 11):
            book(practitioner, kind, patient, f.next_weekday(2), hour, "America/New_York")
        pending = Notification.objects.filter(status=Status.PENDING)
        pending.update(due_at=timezone.now() - timedelta(minutes=1))
        due = sorted(pending.values_list("pk", flat=True))
        assert len(due) == 3  # the three confirmations (the patient has no mobile number)
        with connection.cursor() as cursor:  # the plan a CI run's statistics once chose: a
            # nested loop rerunning the page per row, which took a third row past LIMIT 2
            for knob in ("hashjoin", "mergejoin", "hashagg", "sort", "bitmapscan", "material"):
                cursor.execute(f"SET LOCAL enable_{knob} = off")
        queued = delivery.notifications_due(stuck_after=timedelta(minutes=5))
    assert queued == due
    assert pages == [due[:2], due[2:]]


def test_a_queued_row_is_left_by_the_next_sweep_until_its_lease_passes(acme, monkeypatch):
    """Two beats a minute apart while the workers are behind: the second queues nothing the
    first queued; past the lease a row still pending (its task lost) is queued again."""
    from notifications import delivery

    pages: list[list[int]] = []
    monkeypatch.setattr(delivery, "notifications_queue", pages.append)
    lease = timedelta(minutes=5)
    with in_clinic(acme):
        _, practitioner, kind, patient = visit_world("America/New_York")
        book(practitioner, kind, patient, f.next_weekday(2), 9, "America/New_York")
        now = timezone.now()
        pending = Notification.objects.filter(status=Status.PENDING)
        pending.update(due_at=now - timedelta(minutes=1))
        [row] = pending
        assert delivery.notifications_due(now=now, stuck_after=lease) == [row.pk]
        assert delivery.notifications_due(now=now + timedelta(minutes=1), stuck_after=lease) == []
        later = now + timedelta(minutes=6)
        mine = [acme.schema_name]
        assert delivery.clinics_with_due_notifications(mine, now=later, stuck_after=lease) == mine
        assert delivery.notifications_due(now=later, stuck_after=lease) == [row.pk]
        assert delivery.clinics_with_due_notifications(mine, now=later, stuck_after=lease) == []
    assert pages == [[row.pk], [row.pk]]


def test_concurrent_sweeps_queue_each_due_row_once(committed_acme, settings, monkeypatch):
    """Eight sweeps at once over 3,000 due rows, pages of 250: every row queued, by one."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from django.db import close_old_connections, connection
    from django_tenants.utils import schema_context

    from notifications import delivery

    settings.NOTIFICATION_SWEEP_BATCH = 250
    monkeypatch.setattr(delivery, "notifications_queue", lambda ids: None)
    with in_clinic(committed_acme):
        _, practitioner, kind, patient = visit_world("America/New_York")
        visit = book(practitioner, kind, patient, f.next_weekday(2), 9, "America/New_York")
        now = timezone.now()
        Notification.objects.bulk_create(
            Notification(appointment=visit, patient=patient, kind=Kind.CONFIRMATION,
                         channel="email", start=visit.start, due_at=now - timedelta(minutes=1))
            for _ in range(3000)
        )  # fmt: skip
        due = set(
            Notification.objects.filter(status=Status.PENDING, due_at__lte=now).values_list(
                "pk", flat=True
            )
        )
    barrier = threading.Barrier(8)

    def sweep(_: int) -> list[int]:
        try:
            with schema_context(committed_acme.schema_name):
                barrier.wait(timeout=30)
                return delivery.notifications_due(now=now, stuck_after=timedelta(minutes=5))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        sweeps = list(pool.map(sweep, range(8)))
    close_old_connections()
    everything = [pk for queued in sweeps for pk in queued]
    assert len(due) > 3000
    assert sorted(everything) == sorted(due)  # each once: no duplicates, none missed

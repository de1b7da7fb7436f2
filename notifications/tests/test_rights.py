"""A patient's messages in their data export and erasure (practice/rights.py, issue 16): the
export lists the messages and opt-outs; erasure keeps the delivery facts and removes the
addresses, ends the links and skips what was still to be sent."""

import json
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from notifications.models import ActionLink, Channel, ChannelOptOut, Kind, Notification
from practice.rights import patient_erase, patient_export
from scheduling.tests import factories as f
from tests.fixtures import in_clinic

from .factories import book, rule, visit_world

Status = Notification.Status
ROBIN = "robin.rights@example.test"
CASEY = "casey.rights@example.test"
NY = "America/New_York"
BOOKED_AT = datetime(2027, 5, 3, 14, tzinfo=UTC)  # a Monday, 10:00 in New York
ERASED_AT = datetime(2027, 5, 10, 14, tzinfo=UTC)  # after the first visit, before the second


@pytest.fixture
def messages(acme, make_user):
    """Robin: a past visit whose confirmation was sent (and an SMS that failed quoting the
    number), a future visit with pending reminders and an unused link, an SMS opt-out. Casey,
    another patient, has a sent message of their own."""
    with in_clinic(acme), time_machine.travel(BOOKED_AT, tick=False):
        _, practitioner, kind, robin = visit_world(NY, email=ROBIN, phone="+1 555 0199")
        casey = f.patient(first="Casey")
        casey.email = CASEY
        casey.save(update_fields=["email"])
        rule(48 * 60)
        past = book(practitioner, kind, robin, date(2027, 5, 4), 10, NY)
        future = book(practitioner, kind, robin, date(2027, 5, 20), 10, NY)
        other = book(practitioner, kind, casey, date(2027, 5, 21), 10, NY)
        now = timezone.now()
        Notification.objects.filter(appointment__in=(past, other), kind=Kind.CONFIRMATION).filter(
            channel=Channel.EMAIL
        ).update(status=Status.SENT, recipient=ROBIN, provider_id="<p1@acme>", sent_at=now)
        Notification.objects.filter(appointment=other, channel=Channel.EMAIL).update(
            recipient=CASEY
        )
        Notification.objects.filter(appointment=past, channel=Channel.SMS).update(
            status=Status.FAILED, attempts=6, reason="Provider refused +1 555 0199"
        )
        link = ActionLink.objects.create(
            appointment=future, action="cancel", start=future.start,
            expires_at=future.start - timedelta(hours=1),
        )  # fmt: skip
        ChannelOptOut.objects.create(patient=robin, channel=Channel.SMS)
        admin = make_user(acme, "clinic_admin")
    return {
        "acme": acme, "robin": robin, "casey": casey, "past": past, "future": future,
        "other": other, "link": link, "admin": admin,
    }  # fmt: skip


def test_the_export_lists_the_patients_messages_and_opt_outs_and_nobody_elses(messages):
    with in_clinic(messages["acme"]), time_machine.travel(BOOKED_AT, tick=False):
        document = patient_export(patient=messages["robin"], staff=False)
    rows = document["notifications"]
    visits = {row["appointment"] for row in rows}
    assert visits == {messages["past"].pk, messages["future"].pk}
    sent = [row for row in rows if row["status"] == "sent"]
    assert [(r["kind"], r["channel"], r["recipient"]) for r in sent] == [
        ("confirmation", "email", ROBIN)
    ]
    assert sent[0]["sent_at"].endswith("-04:00")  # the clinic's zone, EDT
    assert {row["kind"] for row in rows} == {"confirmation", "reminder"}
    assert document["notification_opt_outs"][0]["channel"] == "sms"
    assert CASEY not in json.dumps(document)


def test_erasure_keeps_the_delivery_facts_and_removes_addresses_links_and_pending_sends(
    messages,
):
    robin = messages["robin"]
    with in_clinic(messages["acme"]), time_machine.travel(ERASED_AT, tick=False):
        before = Notification.objects.filter(patient=robin).count()
        record = patient_erase(patient=robin, by=messages["admin"], reason="GDPR Art. 17")
        rows = Notification.objects.filter(patient=robin)
        # Kept: every row, what was sent, when, how often tried and the provider's id; plus the
        # cancellation notices of the future visit the erasure cancelled (skipped at once).
        assert rows.count() == before + 2
        sent = rows.get(status=Status.SENT)
        assert (sent.kind, sent.provider_id, sent.attempts) == ("confirmation", "<p1@acme>", 0)
        assert sent.sent_at is not None and sent.recipient == ""
        failed = rows.get(status=Status.FAILED)
        assert failed.attempts == 6 and "555" not in failed.reason
        # Nothing left to send, no address anywhere in the notifications' tables.
        assert not rows.filter(status__in=(Status.PENDING, Status.SENDING)).exists()
        assert rows.filter(kind=Kind.CANCELLATION, status=Status.SKIPPED).count() == 2
        assert not rows.exclude(recipient="").exists()
        assert not Notification.objects.filter(
            recipient__in=(ROBIN, "+1 555 0199"), patient=robin
        ).exists()
        # The link no longer works, the opt-out is gone; Casey's messages are untouched.
        link = ActionLink.objects.get(pk=messages["link"].pk)
        assert link.expires_at <= timezone.now()
        assert not ChannelOptOut.objects.filter(patient=robin).exists()
        assert Notification.objects.filter(patient=messages["casey"], recipient=CASEY).exists()
        record.refresh_from_db()
        assert record.summary["notifications_kept"] == before + 2
        assert record.summary["notification_links_ended"] == 1
        assert record.summary["notification_opt_outs_deleted"] == 1
        document = patient_export(patient=robin, staff=True)
    text = json.dumps(document["notifications"])
    assert ROBIN not in text and "555 0199" not in text
    assert document["notification_opt_outs"] == []

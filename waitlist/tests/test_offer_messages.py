"""The offer's message goes through notifications: its rows are written in the hold's
transaction (and rolled back with it), sent once by the notifications sender with the signed
link, by SMS through the adapter when the patient has a phone, skipped on an opted-out channel
and when the hold ended first; the log and the API list them."""

import json

import pytest
from django.core import mail
from django.db import transaction

from notifications.delivery import notification_send, notifications_send_batch
from notifications.models import Channel, ChannelOptOut, Kind, Notification
from practice.models import Patient
from tests.fixtures import in_clinic

from .. import services
from ..messages import offer_about
from ..models import WaitlistOffer
from .factories import waiting_world
from .test_services import _cancel_and_offer

Status = Notification.Status


class _RolledBack(Exception):
    pass


def _patient(email: str = "wanda@example.test", phone: str = "") -> Patient:
    from scheduling.tests import factories as f

    patient = f.patient(first="Wanda")
    Patient.objects.filter(pk=patient.pk).update(email=email, phone=phone)
    patient.refresh_from_db()
    return patient


def _rows(offer: WaitlistOffer) -> dict[str, Notification]:
    return {
        row.channel: row
        for row in Notification.objects.filter(kind=Kind.WAITLIST_OFFER, about=offer_about(offer))
    }


def test_the_offers_rows_are_written_in_the_holds_transaction_and_roll_back_with_it(acme):
    with in_clinic(acme):
        world = waiting_world()
        world.entry(patient=_patient())
        with pytest.raises(_RolledBack), transaction.atomic():
            offer = _cancel_and_offer(world)
            assert offer is not None
            rows = _rows(offer)
            assert set(rows) == {Channel.EMAIL, Channel.SMS}
            assert rows[Channel.EMAIL].status == Status.PENDING
            assert rows[Channel.EMAIL].appointment_id is None
            assert rows[Channel.EMAIL].start == offer.start
            assert (rows[Channel.SMS].status, rows[Channel.SMS].reason) == (
                Status.SKIPPED, "The patient has no mobile number.",
            )  # fmt: skip
            raise _RolledBack
        assert not WaitlistOffer.objects.exists()
        assert not Notification.objects.filter(kind=Kind.WAITLIST_OFFER).exists()


def test_the_offer_is_sent_once_with_its_signed_link(acme, client_for):
    with in_clinic(acme):
        world = waiting_world()
        world.entry(patient=_patient())
        offer = _cancel_and_offer(world)
        row = _rows(offer)[Channel.EMAIL]
        assert notification_send(notification_id=row.pk) == "sent"
        assert notification_send(notification_id=row.pk) == "not-pending"
        assert notifications_send_batch(notification_ids=[row.pk]) == ({"not-pending": 1}, [])
        row.refresh_from_db()
    [message] = mail.outbox
    assert message.to == ["wanda@example.test"]
    assert message.subject.startswith("An earlier visit is free:")
    assert "/w/" in message.body and "Dr. Wait" in message.body
    assert message.attachments == []  # no visit yet: no .ics
    assert (row.status, row.attempts, row.recipient) == (Status.SENT, 1, "wanda@example.test")
    assert str(row.uid) in row.provider_id


def test_an_sms_goes_through_the_adapter_and_an_opted_out_email_is_skipped(
    acme, settings, tmp_path
):
    settings.SMS_BACKEND = "notifications.sms.FileSmsBackend"
    settings.SMS_FILE_PATH = str(tmp_path)
    with in_clinic(acme):
        world = waiting_world()
        patient = _patient(phone="+12125550100")
        ChannelOptOut.objects.create(patient=patient, channel=Channel.EMAIL)
        world.entry(patient=patient)
        offer = _cancel_and_offer(world)
        rows = _rows(offer)
        assert rows[Channel.EMAIL].status == Status.SKIPPED
        assert rows[Channel.EMAIL].reason == "The patient opted out of Email."
        assert rows[Channel.SMS].status == Status.PENDING
        # the batch path (the beat's) sends it as the single send does
        outcomes, retry = notifications_send_batch(notification_ids=[rows[Channel.SMS].pk])
        assert (outcomes.get("sent"), retry) == (1, [])
        sms = rows[Channel.SMS]
        sms.refresh_from_db()
    assert mail.outbox == []
    [line] = (tmp_path / "sms.jsonl").read_text().splitlines()
    sent = json.loads(line)
    assert sent["to"] == "+12125550100" and sent["key"] == str(sms.uid)
    assert "/w/" in sent["body"] and "held for you until" in sent["body"]
    assert (sms.status, sms.provider_id) == (Status.SENT, f"file-{sms.uid}")


def test_an_offer_declined_before_its_message_went_out_is_skipped(acme):
    with in_clinic(acme):
        world = waiting_world()
        world.entry(patient=_patient())
        offer = _cancel_and_offer(world)
        services.offer_decline(offer=offer)
        row = _rows(offer)[Channel.EMAIL]
        assert notification_send(notification_id=row.pk) == "skipped"
        row.refresh_from_db()
    assert mail.outbox == []
    assert row.status == Status.SKIPPED and "declined" in row.reason


def test_the_clinics_own_template_words_the_offer(acme):
    from notifications.models import MessageTemplate

    with in_clinic(acme):
        MessageTemplate.objects.create(
            kind=Kind.WAITLIST_OFFER, channel=Channel.EMAIL,
            subject="Free: {{ date }}", body="{{ patient }}, take it: {{ offer_url }}",
        )  # fmt: skip
        world = waiting_world()
        world.entry(patient=_patient())
        offer = _cancel_and_offer(world)
        notification_send(notification_id=_rows(offer)[Channel.EMAIL].pk)
    [message] = mail.outbox
    assert message.subject.startswith("Free: ")
    assert message.body.startswith("Wanda, take it: https://") and "/w/" in message.body


def test_the_offers_messages_are_in_the_api_for_staff_and_the_patient(acme, client_for, make_user):
    with in_clinic(acme):
        world = waiting_world()
        patient = _patient()
        world.entry(patient=patient)
        offer = _cancel_and_offer(world)
    desk = make_user(acme, "front_desk")
    answer = client_for(acme, desk).get(f"/api/v1/notifications/?patient={patient.pk}")
    assert answer.status_code == 200, answer.content
    listed = answer.json()["results"]
    assert {(r["kind"], r["channel"], r["about"]) for r in listed} == {
        ("waitlist_offer", "email", offer_about(offer)),
        ("waitlist_offer", "sms", offer_about(offer)),
    }
    assert all(r["appointment"] is None for r in listed)


def test_the_admin_starts_an_offers_template_from_the_built_in_one_and_previews_it(acme, admin_as):
    from notifications.models import MessageTemplate

    client = admin_as("clinic_admin")
    added = client.get("/admin/notifications/messagetemplate/add/?kind=waitlist_offer&channel=sms")
    assert added.status_code == 200
    assert "{{ offer_url }}" in added.content.decode()
    with in_clinic(acme):
        own = MessageTemplate.objects.create(
            kind=Kind.WAITLIST_OFFER,
            channel=Channel.SMS,
            body="Held until {{ until }}: {{ offer_url }}",
        )
    shown = client.get(f"/admin/notifications/messagetemplate/{own.pk}/change/").content.decode()
    assert "Held until Dec 8, 2026, 10:15 AM: https://example.clinic/w/" in shown

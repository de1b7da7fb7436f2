"""Issue 20: a webhook's signing secret is never in the database in clear (clinic.crypto): the
column holds a Fernet token, the delivery still signs with the secret, and a rotated
SECRET_KEY keeps it readable through SECRET_KEY_FALLBACKS until `secrets_reencrypt` rewrites it
under the new key."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from tests.fixtures import in_clinic
from webhooks import delivery as sending
from webhooks.models import WebhookDelivery, WebhookSubscription

from .factories import book, subscribe, visit_world

TZ = "America/New_York"


def _stored(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM webhooks_webhooksubscription WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def _dump_has(text: str) -> bool:
    """Whether any text column of the subscriptions, events or deliveries holds `text`."""
    with connection.cursor() as cursor:
        for table in ("webhooks_webhooksubscription", "webhooks_webhookevent",
                      "webhooks_webhookdelivery"):  # fmt: skip
            cursor.execute(f"SELECT count(*) FROM {table} t WHERE t::text LIKE %s", [f"%{text}%"])  # noqa: S608
            if cursor.fetchone()[0]:
                return True
    return False


def test_the_secret_is_stored_encrypted_and_still_signs(acme, receiver):
    with in_clinic(acme):
        subscription = subscribe(receiver, "/signed", events=["appointment.booked"])
        secret = subscription.secret
        assert len(secret) >= 32
        stored = _stored(subscription.pk)
        assert stored != secret and stored.startswith("gAAAAA")  # a Fernet token
        assert not _dump_has(secret)
        assert WebhookSubscription.objects.get(pk=subscription.pk).secret == secret
        _, practitioner, kind, patient = visit_world(TZ)
        from scheduling.tests import factories as f

        book(practitioner, kind, patient, f.next_weekday(2), 10, TZ)
        [delivery] = WebhookDelivery.objects.all()
        assert sending.delivery_send(delivery_id=delivery.pk) == "succeeded"
        assert not _dump_has(secret)
    [received] = receiver.received
    assert received.signed  # verified by the receiver with the secret in clear


def test_a_rotated_secret_key_reads_through_the_fallback_until_reencrypted(acme, settings):
    old = settings.SECRET_KEY
    new = "rotated-" + "k" * 48
    with in_clinic(acme):
        subscription = WebhookSubscription.objects.create(
            url="https://hooks.example.com/x", events=["appointment.booked"], secret="s" * 40
        )
        before = _stored(subscription.pk)
    with override_settings(SECRET_KEY=new, SECRET_KEY_FALLBACKS=[old]):
        with in_clinic(acme):
            assert WebhookSubscription.objects.get(pk=subscription.pk).secret == "s" * 40
        call_command("secrets_reencrypt", stdout=open("/dev/null", "w"))  # noqa: SIM115
        with in_clinic(acme):
            after = _stored(subscription.pk)
    assert after != before
    with override_settings(SECRET_KEY=new, SECRET_KEY_FALLBACKS=[]), in_clinic(acme):
        assert WebhookSubscription.objects.get(pk=subscription.pk).secret == "s" * 40
    with override_settings(SECRET_KEY="another-" + "z" * 48, SECRET_KEY_FALLBACKS=[]):
        with in_clinic(acme), pytest.raises(ImproperlyConfigured, match="SECRET_KEY_FALLBACKS"):
            WebhookSubscription.objects.get(pk=subscription.pk)

"""Events written in the change's transaction, signed, sent, retried, given up, disabled, kept in
order per appointment, and never sent to a private address unless allowed: the send called in
this process against a real HTTP receiver on 127.0.0.1 (test_worker.py drives real workers)."""

import json
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import transaction
from django.utils import timezone

from clinic.permissions import CLINIC_ADMIN
from scheduling import services
from scheduling.tests import factories as f
from tests.fixtures import in_clinic
from webhooks import delivery as sending
from webhooks.addresses import AddressRefused, target_resolve
from webhooks.models import WebhookDelivery, WebhookEvent, WebhookSubscription
from webhooks.signing import signature_header, signature_verify

from .factories import book, subscribe, visit_world

Status = WebhookDelivery.Status
TZ = "America/New_York"


def _visit(day_offset: int = 0, hour: int = 10):
    _, practitioner, kind, patient = visit_world(TZ)
    day = f.next_weekday(2) + timedelta(days=day_offset)
    return book(practitioner, kind, patient, day, hour, TZ)


def test_a_booking_writes_its_event_and_deliveries_in_its_own_transaction(acme, receiver):
    with in_clinic(acme):
        subscribe(receiver, "/all")
        subscribe(receiver, "/cancels", events=["appointment.cancelled"])
        _, practitioner, kind, patient = visit_world(TZ)
        with pytest.raises(RuntimeError), transaction.atomic():
            book(practitioner, kind, patient, f.next_weekday(2), 10, TZ)
            assert WebhookDelivery.objects.count() == 1  # the booking's, to /all only
            raise RuntimeError("the change rolls back")
        assert not WebhookEvent.objects.exists() and not WebhookDelivery.objects.exists()
        visit = book(practitioner, kind, patient, f.next_weekday(2), 10, TZ)
        [event] = WebhookEvent.objects.all()
        assert (event.type, event.ordering_key) == ("appointment.booked", f"appointment:{visit.pk}")
        body = json.loads(event.body)
        assert set(body) == {"id", "type", "created", "data"}
        assert body["id"] == str(event.id) and body["data"]["id"] == visit.pk
        assert body["data"]["status"] == "booked" and "notes" not in body["data"]
        [row] = WebhookDelivery.objects.all()
        assert (row.status, row.attempts, row.subscription.url) == (
            Status.PENDING, 0, receiver.url("/all"),
        )  # fmt: skip


def test_no_subscription_writes_nothing(acme):
    with in_clinic(acme):
        _visit()
        assert not WebhookEvent.objects.exists()


def test_the_receiver_verifies_the_signature_of_what_was_sent(acme, receiver):
    with in_clinic(acme):
        subscription = subscribe(receiver, "/hook")
        visit = _visit()
        [row] = WebhookDelivery.objects.all()
        assert sending.delivery_send(delivery_id=row.pk) == "succeeded"
        [got] = receiver.received
        assert got.signed and got.answered == 200
        assert got.event["type"] == "appointment.booked" and got.event["data"]["id"] == visit.pk
        assert got.headers["Clinic-Event-Id"] == str(row.event_id) == got.event["id"]
        assert got.headers["Content-Type"] == "application/json"
        row.refresh_from_db()
        assert (row.status, row.attempts, row.response_code) == (Status.SUCCEEDED, 1, 200)
        assert row.latency_ms is not None and row.delivered_at is not None
        # another secret, a changed body or an old timestamp do not verify
        header = got.headers["Clinic-Signature"]
        now = timezone.now().timestamp()
        assert signature_verify(secret=subscription.secret, header=header, body=got.body, now=now)
        assert not signature_verify(secret="whsec_other", header=header, body=got.body, now=now)
        assert not signature_verify(
            secret=subscription.secret, header=header, body=got.body + b" ", now=now
        )
        assert not signature_verify(
            secret=subscription.secret, header=header, body=got.body, now=now + 600
        )
        # a second send of a finished delivery does nothing
        assert sending.delivery_send(delivery_id=row.pk) == "not-pending"
        assert len(receiver.received) == 1


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    import hashlib
    import hmac

    body = b'{"id":"1"}'
    expected = hmac.new(b"whsec_k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature_header(secret="whsec_k", timestamp=1700000000, body=body) == (
        f"t=1700000000,v1={expected}"
    )


def test_backoff_doubles_up_to_the_cap_and_gives_up_after_a_day(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    settings.WEBHOOK_RETRY_MAX_SECONDS = 3600
    settings.WEBHOOK_RETRY_HOURS = 24
    assert [sending.retry_delay(n) for n in range(1, 10)] == [
        30, 60, 120, 240, 480, 960, 1920, 3600, 3600,
    ]  # fmt: skip
    created = timezone.now()
    assert sending.retry_at(created_at=created, attempts=1, now=created) == created + timedelta(
        seconds=30
    )
    late = created + timedelta(hours=23, minutes=30)
    assert sending.retry_at(created_at=created, attempts=12, now=late) is None


def test_a_failing_receiver_is_retried_with_backoff_then_given_up(acme, receiver, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    receiver.fail_first = 1000
    with in_clinic(acme):
        subscription = subscribe(receiver, "/down")
        _visit()
        [row] = WebhookDelivery.objects.all()
        start = timezone.now()
        with time_machine.travel(start, tick=False):
            assert sending.delivery_send(delivery_id=row.pk) == "retrying"
        row.refresh_from_db()
        assert (row.status, row.attempts, row.response_code) == (Status.PENDING, 1, 500)
        assert row.next_attempt_at == start + timedelta(seconds=30)
        assert "500" in row.last_error
        with time_machine.travel(start + timedelta(seconds=10), tick=False):
            assert sending.delivery_send(delivery_id=row.pk) == "not-due"
        # a day later the next try would fall past the window: given up
        late = row.created_at + timedelta(hours=23, minutes=59, seconds=30)
        with time_machine.travel(late, tick=False):
            assert sending.delivery_send(delivery_id=row.pk) == "failed"
        row.refresh_from_db()
        assert (row.status, row.attempts, row.next_attempt_at) == (Status.FAILED, 2, None)
        subscription.refresh_from_db()
        assert subscription.consecutive_failures == 2 and subscription.is_active


def test_repeated_failures_disable_the_subscription_and_tell_the_clinic_admin(
    acme, receiver, settings, make_user
):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    admin = make_user(acme, CLINIC_ADMIN)
    make_user(acme, "front_desk")
    receiver.fail_first = 1000
    with in_clinic(acme):
        subscription = subscribe(receiver, "/flaky")
        _visit()
        [row] = WebhookDelivery.objects.all()
        results = [sending.delivery_send(delivery_id=row.pk) for _ in range(4)]
        assert results == ["retrying", "retrying", "retrying", "disabled"]
        subscription.refresh_from_db()
        assert not subscription.is_active and subscription.disabled_at is not None
        assert "3 failed deliveries" in subscription.disabled_reason
        [notice] = mail.outbox
        assert notice.to == [admin.email] and subscription.url in notice.body
        row.refresh_from_db()
        assert (row.status, row.last_error) == (Status.FAILED, "The subscription is disabled.")
        assert len(receiver.received) == 3
        # a disabled subscription gets no new deliveries
        _visit(day_offset=1)
        assert WebhookDelivery.objects.count() == 1


def test_a_later_event_of_a_visit_waits_for_the_earlier_one(acme, receiver, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0
    with in_clinic(acme):
        subscribe(receiver, "/ordered")
        visit = _visit()
        other = _visit(day_offset=1)
        services.appointment_cancel(appointment=visit, reason="ill")
        booked, other_booked, cancelled = WebhookDelivery.objects.order_by("pk")
        assert cancelled.event.type == "appointment.cancelled"
        receiver.fail_first = 1
        assert sending.delivery_send(delivery_id=booked.pk) == "retrying"
        # the cancel waits while the booking is still pending; another visit's event does not
        assert sending.delivery_send(delivery_id=cancelled.pk) == "not-pending"
        assert sending.delivery_send(delivery_id=other_booked.pk) == "succeeded"
        assert sending.delivery_send(delivery_id=booked.pk) == "succeeded"
        assert sending.delivery_send(delivery_id=cancelled.pk) == "succeeded"
        types = [(r.event["data"]["id"], r.event["type"]) for r in receiver.accepted()]
        assert types == [
            (other.pk, "appointment.booked"),
            (visit.pk, "appointment.booked"),
            (visit.pk, "appointment.cancelled"),
        ]


def test_the_sweep_queues_only_the_first_open_delivery_of_a_visit(acme, receiver):
    with in_clinic(acme):
        subscribe(receiver, "/swept")
        visit = _visit()
        services.appointment_cancel(appointment=visit, reason="ill")
        booked, cancelled = WebhookDelivery.objects.order_by("pk")
        due = sending.deliveries_due(stuck_after=timedelta(minutes=5))
        assert booked.pk in due and cancelled.pk not in due


def test_the_beat_visits_only_the_clinics_with_deliveries_due(acme, globex, receiver):
    stuck = timedelta(minutes=5)
    schemas = [acme.schema_name, globex.schema_name]
    assert sending.clinics_with_due_deliveries(schemas, stuck_after=stuck) == []
    with in_clinic(acme):
        subscribe(receiver, "/beat")
        _visit()
        [row] = WebhookDelivery.objects.all()
    assert sending.clinics_with_due_deliveries(schemas, stuck_after=stuck) == [acme.schema_name]
    with in_clinic(acme):  # claimed by a worker: not due until its lease is past
        WebhookDelivery.objects.filter(pk=row.pk).update(
            status="sending", claimed_at=timezone.now(), claim=uuid.uuid4()
        )
    assert sending.clinics_with_due_deliveries(schemas, stuck_after=stuck) == []
    later = timezone.now() + stuck + timedelta(seconds=1)
    assert sending.clinics_with_due_deliveries(schemas, now=later, stuck_after=stuck) == [
        acme.schema_name
    ]


def test_a_replay_sends_the_same_event_again_as_a_new_delivery(acme, receiver):
    from webhooks.services import delivery_replay

    with in_clinic(acme):
        subscribe(receiver, "/replayed")
        _visit()
        [row] = WebhookDelivery.objects.all()
        sending.delivery_send(delivery_id=row.pk)
        replay = delivery_replay(delivery=row)
        assert (replay.replay_of_id, replay.event_id, replay.status) == (
            row.pk, row.event_id, Status.PENDING,
        )  # fmt: skip
        assert sending.delivery_send(delivery_id=replay.pk) == "succeeded"
        first, again = receiver.accepted()
        assert first.body == again.body and first.event["id"] == again.event["id"]


# --- SSRF --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8000/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
        "ftp://203.0.113.5/hook",
    ],
)
def test_private_loopback_and_link_local_addresses_are_refused(url):
    with pytest.raises(AddressRefused):
        target_resolve(url, allow_private=False)


def test_a_public_address_is_accepted_and_pinned():
    target = target_resolve("https://93.184.215.14:8443/hook", allow_private=False)
    assert (target.host, target.port, target.address) == ("93.184.215.14", 8443, "93.184.215.14")


def test_the_send_checks_the_address_again(acme, receiver, settings):
    """A subscription made while private addresses were allowed (or whose name resolves to one
    only now: DNS rebinding) is refused at the send, and nothing reaches the address."""
    with in_clinic(acme):
        subscribe(receiver, "/inside")
        _visit()
        [row] = WebhookDelivery.objects.all()
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
        assert sending.delivery_send(delivery_id=row.pk) == "retrying"
        row.refresh_from_db()
        assert "not public" in row.last_error and row.response_code is None
        assert receiver.received == []


def test_other_clinics_subscriptions_get_no_event(acme, globex, receiver):
    with in_clinic(globex):
        subscribe(receiver, "/globex")
    with in_clinic(acme):
        subscribe(receiver, "/acme")
        _visit()
        for row in WebhookDelivery.objects.all():
            sending.delivery_send(delivery_id=row.pk)
    with in_clinic(globex):
        assert not WebhookEvent.objects.exists() and not WebhookDelivery.objects.exists()
        assert WebhookSubscription.objects.count() == 1
    assert [r.path for r in receiver.received] == ["/acme"]


def test_each_delivered_webhook_is_counted_in_the_clinics_usage(acme, receiver, clean_usage):
    from django_tenants.utils import schema_context

    from usage.models import UsageDay
    from usage.rollup import usage_rollup

    receiver.fail_first = 1
    with in_clinic(acme):
        subscribe(receiver, "/metered")
        _visit()
        _visit(day_offset=1)
        for row in WebhookDelivery.objects.order_by("pk"):
            while sending.delivery_send(delivery_id=row.pk) != "succeeded":
                WebhookDelivery.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    usage_rollup()
    with schema_context("public"):
        counted = UsageDay.objects.filter(schema_name=acme.schema_name, kind="webhook_delivered")
        assert sum(counted.values_list("count", flat=True)) == 2  # the failed try is not one


def test_the_readme_verification_snippet_verifies_a_real_delivery(acme, receiver):
    """The README's receiver code, run as written, on a request the receiver really got."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    after = readme.split("Verifying a delivery", 1)[1]
    code = after.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own documentation
    verify = namespace["verify"]
    with in_clinic(acme):
        subscription = subscribe(receiver, "/readme")
        _visit()
        [row] = WebhookDelivery.objects.all()
        sending.delivery_send(delivery_id=row.pk)
    [got] = receiver.received
    header = got.headers["Clinic-Signature"]
    assert verify(subscription.secret, header, got.body)
    assert not verify(subscription.secret, header, got.body.replace(b"booked", b"BOOKED"))
    assert not verify("whsec_someone-else", header, got.body)


def test_a_booking_in_a_clinic_without_subscriptions_pays_one_read(acme, receiver):
    """The cost on the booking path: one indexed read of the subscriptions, no write and no
    serializing; with a subscription, one event and one delivery INSERT more."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def webhook_queries(run) -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            run()
        return [q["sql"].split()[0] for q in captured if "webhooks_" in q["sql"]]

    with in_clinic(acme):
        _, practitioner, kind, patient = visit_world(TZ)
        day = f.next_weekday(2)
        assert webhook_queries(lambda: book(practitioner, kind, patient, day, 9, TZ)) == ["SELECT"]
        subscribe(receiver, "/cost")
        assert webhook_queries(lambda: book(practitioner, kind, patient, day, 11, TZ)) == [
            "SELECT", "INSERT", "INSERT",
        ]  # fmt: skip

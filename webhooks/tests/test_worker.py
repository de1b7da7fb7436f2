"""Webhooks through real Celery workers and Redis, to a real HTTP receiver on 127.0.0.1: every
request's signature verifies; a receiver that fails and then recovers gets every event exactly
once per event id, in order per visit; a worker SIGKILLed mid-send loses no delivery; a replay
from the API arrives again; one clinic's events never reach another's subscriptions."""

import os
import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from clinic.permissions import CLINIC_ADMIN
from scheduling import services
from scheduling.tests import factories as f
from tests.fixtures import _clinic, _wait_for_worker, in_clinic, start_worker, stop_worker
from webhooks.delivery import deliveries_due
from webhooks.models import WebhookDelivery, WebhookEvent

from .factories import book, subscribe, visit_world
from .receiver import Receiver

Status = WebhookDelivery.Status
TZ = "America/New_York"


@pytest.fixture
def queue(settings) -> str:
    settings.WEBHOOKS_QUEUE = f"{os.environ['CELERY_QUEUE']}-hooks-{time.monotonic_ns()}"
    return settings.WEBHOOKS_QUEUE


def _worker(queue: str, name: str, **env: str):
    proc = start_worker(
        "--concurrency=1", "--pool=solo", name=name, queue=queue,
        env={"WEBHOOKS_QUEUE": queue, "WEBHOOK_RETRY_BASE_SECONDS": "0.2",
             "WEBHOOK_RETRY_MAX_SECONDS": "1", **env},
    )  # fmt: skip
    _wait_for_worker(name=name)
    return proc


def _wait(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _all_succeeded() -> bool:
    return not WebhookDelivery.objects.exclude(status=Status.SUCCEEDED).exists()


def _visits(count: int):
    _, practitioner, kind, patient = visit_world(TZ)
    day = f.next_weekday(2)
    return [book(practitioner, kind, patient, day, 9 + i, TZ) for i in range(count)]


def test_a_receiver_that_fails_then_recovers_gets_each_event_once_in_order(
    committed, queue, receiver: Receiver
):
    clinic = _clinic("acme")
    receiver.fail_first = 5
    worker = _worker(queue, "hooks-recover")
    try:
        with in_clinic(clinic):
            subscribe(receiver, "/recover")
            first, second, third = _visits(3)
            services.appointment_cancel(appointment=first, reason="ill")
            services.appointment_reschedule(
                appointment=second, start=second.start + timedelta(hours=4)
            )
            _wait(_all_succeeded, "not every delivery succeeded")
            events = {str(pk): t for pk, t in WebhookEvent.objects.values_list("pk", "type")}
            attempts = sum(WebhookDelivery.objects.values_list("attempts", flat=True))
    finally:
        stop_worker(worker)
    assert len(events) == 5
    assert attempts == 5 + 5  # each failed try was tried again
    assert all(r.signed for r in receiver.received)  # every request verified, failed ones too
    accepted = receiver.accepted()
    ids = [r.event["id"] for r in accepted]
    assert sorted(ids) == sorted(events)  # every event exactly once
    assert all(r.headers["Clinic-Event-Id"] == r.event["id"] for r in accepted)
    for visit, kinds in (
        (first.pk, ["appointment.booked", "appointment.cancelled"]),
        (second.pk, ["appointment.booked", "appointment.changed"]),
        (third.pk, ["appointment.booked"]),
    ):
        assert [r.event["type"] for r in accepted if r.event["data"]["id"] == visit] == kinds


def test_a_sender_killed_mid_send_loses_no_delivery(committed, queue, receiver: Receiver):
    clinic = _clinic("acme")
    doomed = _worker(queue, "hooks-doomed", WEBHOOK_SEND_DELAY="3")
    with in_clinic(clinic):
        subscribe(receiver, "/killed")
        [visit] = _visits(1)
        services.appointment_cancel(appointment=visit, reason="ill")
        booked, cancelled = WebhookDelivery.objects.order_by("pk")
        _wait(
            lambda: WebhookDelivery.objects.get(pk=booked.pk).status == Status.SENDING,
            "the send never started",
        )
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait()
    rescuer = _worker(queue, "hooks-rescuer")
    try:
        with in_clinic(clinic):
            assert WebhookDelivery.objects.get(pk=booked.pk).status == Status.SENDING
            assert WebhookDelivery.objects.get(pk=cancelled.pk).status == Status.PENDING
            # the beat, a minute after the crash, with a lease shorter than that
            later = timezone.now() + timedelta(minutes=1)
            due = deliveries_due(now=later, stuck_after=timedelta(seconds=30))
            assert booked.pk in due and cancelled.pk not in due  # the cancel waits its turn
            _wait(_all_succeeded, "the rescuer never sent them")
            assert deliveries_due(now=later, stuck_after=timedelta(0)) == []
            time.sleep(1)
            rows = {r.pk: r for r in WebhookDelivery.objects.all()}
    finally:
        stop_worker(rescuer)
    assert rows[booked.pk].attempts == 2 and rows[cancelled.pk].attempts == 1
    assert [r.event["type"] for r in receiver.accepted()] == [
        "appointment.booked",
        "appointment.cancelled",
    ]


def test_a_replay_from_the_api_arrives_again_with_the_same_event_id(
    committed, queue, receiver: Receiver, make_user, client_for
):
    clinic = _clinic("acme")
    admin = make_user(clinic, CLINIC_ADMIN)
    worker = _worker(queue, "hooks-replay")
    try:
        with in_clinic(clinic):
            subscription = subscribe(receiver, "/replay")
            _visits(1)
            _wait(_all_succeeded, "the delivery never succeeded")
            [row] = WebhookDelivery.objects.all()
        api = client_for(clinic, admin)
        base = f"/api/v1/webhooks/{subscription.pk}/deliveries/"
        answer = api.post(f"{base}{row.pk}/replay/")
        assert answer.status_code == 202, answer.content
        replay = answer.json()
        assert (replay["event_id"], replay["status"]) == (str(row.event_id), "pending")
        with in_clinic(clinic):
            _wait(_all_succeeded, "the replay never succeeded")
        log = api.get(base).json()["results"]
        assert [(d["id"], d["status"], d["replay_of"]) for d in log] == [
            (replay["id"], "succeeded", row.pk),
            (row.pk, "succeeded", None),
        ]
        assert log[0]["response_code"] == 200 and log[0]["latency_ms"] is not None
    finally:
        stop_worker(worker)
    first, again = receiver.accepted()
    assert first.event["id"] == again.event["id"] == str(row.event_id)
    assert first.body == again.body


def test_one_clinics_events_never_reach_another_clinics_subscriptions(
    committed, queue, receiver: Receiver
):
    acme, globex = _clinic("acme"), _clinic("globex")
    worker = _worker(queue, "hooks-tenants")
    try:
        with in_clinic(acme):
            subscribe(receiver, "/acme")
            acme_visits = {v.pk for v in _visits(2)}
        with in_clinic(globex):
            subscribe(receiver, "/globex")
            _, practitioner, kind, patient = visit_world("Europe/Dublin")
            globex_visit = book(practitioner, kind, patient, f.next_weekday(2), 10, "Europe/Dublin")
        receiver.wait_for(3)
        time.sleep(1)  # a stray delivery would have landed by now
    finally:
        stop_worker(worker)
    by_path = {
        path: {r.event["data"]["id"] for r in receiver.accepted(path)}
        for path in ("/acme", "/globex")
    }
    assert by_path == {"/acme": acme_visits, "/globex": {globex_visit.pk}}
    assert len(receiver.received) == 3

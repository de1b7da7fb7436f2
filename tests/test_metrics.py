"""`/metrics` (issue 21, part 1): Prometheus text on the platform host, behind its token,
with the series of requests, queries, the answer cache, tasks, queues, outcomes and the usage
metering's per-clinic counts (clinic/metrics.py, usage/metrics.py)."""

import time
import uuid

import pytest
import time_machine
from channels.testing import WebsocketCommunicator
from django.core.cache import cache
from django.test import Client
from django_tenants.utils import schema_context
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.parser import text_string_to_metric_families

import usage
from accounts.auth import ClinicTokenObtainPairSerializer
from clinic import counting
from clinic.api import ANSWERS_VERSION_KEY
from clinic.asgi import application
from clinic.permissions import FRONT_DESK
from notifications.tasks import send_notification_task
from scheduling.smart.tasks import run_smart_booking_task
from scheduling.tests import factories as f
from tests.fixtures import (
    ClinicClient,
    _wait_for_worker,
    host_of,
    in_clinic,
    run_async,
    start_worker,
    stop_worker,
)
from usage import counters
from usage.rollup import usage_rollup

TOKEN = "metrics-test-token"
SEARCH = "/api/v1/practitioners/?specialty=cardiology"
MIDDAY = "2026-12-09T12:00:00+00:00"  # one UTC day for counting and rolling up


def _samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of a Prometheus text page."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _scrape(token: str | None = TOKEN):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return Client(HTTP_HOST="localhost").get("/metrics", **headers)


def _page() -> dict[tuple, float]:
    response = _scrape()
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return _samples(response.content.decode())


def _value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metrics_on(settings, acme):
    settings.METRICS_TOKEN = TOKEN
    settings.ANSWER_CACHE_SECONDS = 30  # tests turn it off; on here to see a hit
    with in_clinic(acme):
        cache.set(ANSWERS_VERSION_KEY, uuid.uuid4().hex, None)
        f.practitioner(name="Dr. Metrics", specialties=(f.specialty("cardiology"),))


def test_metrics_count_requests_queries_answer_cache_and_a_task(metrics_on, acme, settings):
    before = _page()
    anon = ClinicClient(acme)
    with time_machine.travel(time.time(), tick=False):  # both searches in one answer minute
        assert anon.get(SEARCH).status_code == 200
        assert anon.get(SEARCH).status_code == 200
    assert anon.get("/api/v1/no-such-route/").status_code == 404
    assert anon.generic("BREW", "/api/v1/no-such-route/").status_code == 404
    with in_clinic(acme):
        assert run_smart_booking_task.apply(args=(str(uuid.uuid4()),)).get() == "skipped"
    queue = f"metrics-test-{uuid.uuid4().hex}"
    settings.WEBHOOKS_QUEUE = queue
    redis = counters.redis_client()
    redis.rpush(queue, "a", "b", "c")
    try:
        after = _page()
    finally:
        redis.delete(queue)

    def delta(name: str, **labels) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    search = {"route": "practitioner-list"}
    assert delta("clinic_http_requests_total", **search, method="GET", status="2xx") == 2
    assert delta("clinic_http_requests_total", route="unmatched", method="GET", status="4xx") == 1
    # a method of the client's own naming is "other": a label's values stay bounded
    assert delta("clinic_http_requests_total", route="unmatched", method="other", status="4xx") == 1
    # the first scrape is counted once it is answered: in the second
    assert delta("clinic_http_requests_total", route="metrics", method="GET", status="2xx") == 1
    assert delta("clinic_http_request_duration_seconds_count", **search, status="2xx") == 2
    assert delta("clinic_http_request_duration_seconds_bucket", **search, status="2xx", le="+Inf")
    # the miss ran queries, the hit none
    assert delta("clinic_http_request_db_queries_count", **search) == 2
    assert delta("clinic_http_request_db_queries_bucket", **search, le="0.0") == 1
    assert delta("clinic_http_request_db_queries_sum", **search) > 0
    kind = "practitioner-search"
    assert delta("clinic_answer_cache_total", kind=kind, result="miss") == 1
    assert delta("clinic_answer_cache_total", kind=kind, result="hit") == 1
    task = "scheduling.run_smart_booking"
    assert delta("clinic_celery_task_duration_seconds_count", task=task, state="SUCCESS") == 1
    assert delta("clinic_smart_booking_jobs_total", outcome="skipped") == 1
    assert _value(after, "clinic_celery_queue_depth", queue=queue) == 3
    assert (
        "clinic_celery_queue_depth",
        (("queue", settings.CELERY_TASK_DEFAULT_QUEUE),),
    ) in after
    # no clinic on the histograms: their labels are the route and the status class
    for name, labels in after:
        if name.startswith("clinic_http_request_"):
            assert {key for key, _ in labels} <= {"route", "status", "le"}, name


def test_metrics_are_refused_without_the_token_and_absent_in_production(settings, acme):
    settings.METRICS_TOKEN = TOKEN
    for token in (None, "wrong-token"):
        response = _scrape(token)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["errors"] == {"Authorization": ["Missing or wrong metrics token."]}
    assert _scrape().status_code == 200
    # Only the platform's host serves it, never a clinic's.
    clinic = ClinicClient(acme).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert clinic.status_code == 404

    settings.METRICS_TOKEN = ""
    settings.CLINIC_PRODUCTION = True
    assert _scrape(None).status_code == 404
    settings.CLINIC_PRODUCTION = False  # `make run`: open on the developer's machine
    assert _scrape(None).status_code == 200


@pytest.fixture
def clean_usage(db):
    redis = counters.redis_client()

    def clean():
        counting.flush()  # earlier tests' counts land first, then go
        for key in redis.scan_iter(match=f"{counters.key_prefix()}:*"):
            redis.delete(key)

    clean()
    yield
    clean()


@time_machine.travel(MIDDAY)
def test_per_clinic_usage_counts_rolled_up_and_still_in_redis(settings, clean_usage, acme, globex):
    settings.METRICS_TOKEN = TOKEN
    with schema_context(acme.schema_name):
        for _ in range(3):
            usage.count(usage.API_CALL, subject="user:staff", group="appointments")
    usage.count(usage.NOTIFICATION_SENT, 2, group="email", schema=globex.schema_name)
    assert usage_rollup() == 2  # into UsageDay
    with schema_context(acme.schema_name):
        usage.count(usage.API_CALL, 2, subject="client:x", group="patients")  # still in Redis

    page = _page()
    assert _value(page, "clinic_usage_today_total", clinic=acme.schema_name, kind="api_call") == 5
    assert (
        _value(
            page, "clinic_usage_today_total", clinic=globex.schema_name, kind="notification_sent"
        )
        == 2
    )


def test_a_worker_task_shows_through_the_multiprocess_directory(committed_acme, tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR, a worker process's task durations and outcomes are in
    the files the scrape reads."""
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    name = f"metrics{uuid.uuid4().hex[:6]}"
    proc = start_worker(
        "--concurrency=1", name=name, queue=queue, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    )
    try:
        _wait_for_worker(name=name)
        with in_clinic(committed_acme):
            first = run_smart_booking_task.apply_async((str(uuid.uuid4()),), queue=queue)
            second = run_smart_booking_task.apply_async((str(uuid.uuid4()),), queue=queue)
            # One worker process runs them in turn, each to its end (its postrun signal, which
            # observes its duration) before the next: once the last has answered, the two
            # before it are in the files.
            last = send_notification_task.apply_async((0,), queue=queue)
            assert first.get(timeout=60) == second.get(timeout=60) == "skipped"
            assert last.get(timeout=60) == "not-pending"
    finally:
        stop_worker(proc)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(tmp_path))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
    }
    task = (("state", "SUCCESS"), ("task", "scheduling.run_smart_booking"))
    assert samples[("clinic_celery_task_duration_seconds_count", task)] == 2
    assert samples[("clinic_smart_booking_jobs_total", (("outcome", "skipped"),))] == 2
    assert samples[("clinic_notifications_total", (("outcome", "not-pending"),))] == 1


def _open_sockets() -> float:
    value = REGISTRY.get_sample_value(
        "clinic_websocket_connections", {"consumer": "ScheduleConsumer"}
    )
    return value or 0.0


async def _board_socket_counted(clinic, token: str) -> tuple[float, float]:
    """(sockets open while the board's is, after it closed)"""
    communicator = WebsocketCommunicator(
        application, f"/ws/schedule/?token={token}", headers=[(b"host", host_of(clinic).encode())]
    )
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    await communicator.receive_output(timeout=10)  # ready
    during = _open_sockets()
    await communicator.disconnect()
    return during, _open_sockets()


def test_the_websocket_gauge_counts_open_board_sockets(committed_acme, make_user):
    user = make_user(committed_acme, FRONT_DESK)
    with in_clinic(committed_acme):
        token = str(ClinicTokenObtainPairSerializer.get_token(user).access_token)
    before = _open_sockets()
    during, after = run_async(_board_socket_counted(committed_acme, token))
    assert (during - before, after - before) == (1, 0)

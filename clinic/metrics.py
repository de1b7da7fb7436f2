"""Prometheus metrics at `/metrics` on the platform host (issue 21, part 1; README,
Operations: metrics).

Counted as things happen, in the process where they happen (prometheus-client, no Redis on the
request path): requests and their latency by route name and status class, database queries per
request, answer-cache hits and misses by answer kind, Celery task durations by task, open
websockets, smart-booking and notification outcomes. Read at scrape time: the depth of the
Celery queues (LLEN in the broker) and whatever a collector registered with `scrape_collector`
reports (the usage metering's per-clinic counts, usage/metrics.py).

With `PROMETHEUS_MULTIPROC_DIR` set (before any process starts; the same empty directory for
the web server's workers, the websocket server and the Celery workers) every process writes
its series to files there and the scrape adds them up (prometheus-client's multiprocess mode):
task durations measured in a worker show on the web host's `/metrics`. Without it the scrape
shows the series of the process that answers it only.
"""

import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from redis.exceptions import RedisError

from .requestlog import _route

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_QUERY_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200)
_TASK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

REQUESTS = Counter("clinic_http_requests", "HTTP requests answered.", ["route", "method", "status"])
REQUEST_SECONDS = Histogram(
    "clinic_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["route", "status"],
    buckets=_LATENCY_BUCKETS,
)
REQUEST_QUERIES = Histogram(
    "clinic_http_request_db_queries",
    "Database queries run while answering an HTTP request.",
    ["route"],
    buckets=_QUERY_BUCKETS,
)
ANSWER_CACHE = Counter(
    "clinic_answer_cache", "Answer-cache lookups (clinic.api.AnswerCache).", ["kind", "result"]
)
TASK_SECONDS = Histogram(
    "clinic_celery_task_duration_seconds",
    "Time a Celery task ran in its worker.",
    ["task", "state"],
    buckets=_TASK_BUCKETS,
)
WEBSOCKETS = Gauge(
    "clinic_websocket_connections",
    "Websockets open now.",
    ["consumer"],
    multiprocess_mode="livesum",
)
SMART_BOOKING_JOBS = Counter(
    "clinic_smart_booking_jobs", "Smart-booking job runs by outcome.", ["outcome"]
)
NOTIFICATIONS = Counter(
    "clinic_notifications", "Notifications handled by a worker, by outcome.", ["outcome"]
)


# A label's values must be bounded: a client may send any method name.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def method_label(method: str | None) -> str:
    return method if method in _METHODS else "other"


class MetricsMiddleware:
    """Counts each request, its latency and its database queries, by the route's name (the
    one the request log writes; `unmatched` when no URL matched) and status class. In-process
    only: no I/O on the request path."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        queries = [0]

        def count(execute, sql, params, many, context):
            queries[0] += 1
            return execute(sql, params, many, context)

        started = time.perf_counter()
        with connection.execute_wrapper(count):
            response = self.get_response(request)
        seconds = time.perf_counter() - started
        route = _route(request) or "unmatched"
        status = status_class(response.status_code)
        REQUESTS.labels(route, method_label(request.method), status).inc()
        REQUEST_SECONDS.labels(route, status).observe(seconds)
        REQUEST_QUERIES.labels(route).observe(queries[0])
        return response


def answer_cache_lookup(kind: str, hit: bool) -> None:
    ANSWER_CACHE.labels(kind, "hit" if hit else "miss").inc()


def task_finished(task: str, state: str | None, seconds: float | None) -> None:
    if seconds is not None:
        TASK_SECONDS.labels(task, state or "").observe(seconds)


def smart_booking_outcome(outcome: str) -> str:
    SMART_BOOKING_JOBS.labels(outcome).inc()
    return outcome


def notification_outcomes(outcomes: dict[str, int] | str) -> None:
    if isinstance(outcomes, str):
        outcomes = {outcomes: 1}
    for outcome, n in outcomes.items():
        if n:
            NOTIFICATIONS.labels(outcome).inc(n)


def websocket_opened(consumer: str) -> None:
    WEBSOCKETS.labels(consumer).inc()


def websocket_closed(consumer: str) -> None:
    WEBSOCKETS.labels(consumer).dec()


# Read at scrape time ----------------------------------------------------------------------

_scrape_collectors: list[Callable[[], Iterable[Metric]]] = []


def scrape_collector(collect: Callable[[], Iterable[Metric]]) -> Callable[[], Iterable[Metric]]:
    """Register a function run at each scrape, yielding metric families (the usage metering's
    per-clinic counters)."""
    if collect not in _scrape_collectors:
        _scrape_collectors.append(collect)
    return collect


def celery_queue_names() -> list[str]:
    return sorted(
        {
            settings.CELERY_TASK_DEFAULT_QUEUE,
            settings.SMART_BOOKING_QUEUE,
            settings.NOTIFICATIONS_QUEUE,
            settings.WEBHOOKS_QUEUE,
        }
    )


# kombu's Redis transport keeps a queue's messages of priority step 3, 6 and 9 in lists of
# their own, named after the queue.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def _celery_queue_depth() -> Iterable[Metric]:
    import redis

    family = GaugeMetricFamily(
        "clinic_celery_queue_depth", "Messages waiting in a Celery queue.", labels=["queue"]
    )
    client = redis.Redis.from_url(
        settings.CELERY_BROKER_URL,
        socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT,
        socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
    )
    names = celery_queue_names()
    try:
        pipe = client.pipeline(transaction=False)
        for name in names:
            for suffix in _PRIORITY_SUFFIXES:
                pipe.llen(name + suffix)
        depths = pipe.execute()
    except (RedisError, OSError) as error:
        log.warning("metrics: Celery queue depth not read (%s)", error)
        return []
    finally:
        client.close()
    step = len(_PRIORITY_SUFFIXES)
    for i, name in enumerate(names):
        family.add_metric([name], sum(depths[i * step : (i + 1) * step]))
    return [family]


class _ScrapeTime:
    def collect(self) -> Iterable[Metric]:
        yield from _celery_queue_depth()
        for collect in _scrape_collectors:
            try:
                yield from collect()
            except Exception:  # a scrape shows what it can
                log.exception("metrics: collector %s failed", collect)


class _ThisProcess:
    def collect(self) -> Iterable[Metric]:
        yield from REGISTRY.collect()


def exposition() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(_ScrapeTime())
    return generate_latest(registry)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics` on the platform host: `Authorization: Bearer <METRICS_TOKEN>`. Without a
    token configured the endpoint is open outside production (`make run`) and absent (404) in
    production."""
    from .errors import PROBLEM_CONTENT_TYPE, problem  # imports DRF: not while settings load

    token = settings.METRICS_TOKEN
    if not token:
        if settings.CLINIC_PRODUCTION:
            raise Http404
    else:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            response = JsonResponse(
                problem(
                    status=401,
                    code="metrics-token",
                    detail="Send the metrics token as `Authorization: Bearer <token>`.",
                    errors={"Authorization": ["Missing or wrong metrics token."]},
                ),
                status=401,
                content_type=PROBLEM_CONTENT_TYPE,
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)

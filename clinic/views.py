import time

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods
from django_tenants.utils import get_public_schema_name, get_tenant_model

from clinic.api import answer_stats, answer_stats_reset
from clinic.errors import PROBLEM_CONTENT_TYPE, problem
from clinic.resilience import RedisUnavailableError, fail_open_counts
from clinic.tenancy import tenant_connection

_redis = redis.Redis.from_url(
    settings.REDIS_URL,
    socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
    socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT,
)


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        detail = check()
    except Exception as exc:  # noqa: BLE001  (a health probe reports every failure)
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    result = {"status": "up", "ms": round((time.perf_counter() - started) * 1000, 1)}
    if isinstance(detail, dict):
        result.update(detail)
    return result


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _redis_ping() -> None:
    _redis.ping()


def _celery() -> dict:
    from clinic.celery import app

    replies = app.control.ping(timeout=1.0, limit=1)
    if not replies:
        raise RuntimeError("no Celery worker answered within 1 s")
    names = [name for reply in replies for name in reply]
    return {"workers": len(names), "worker_names": names}


# What anyone may read of a check: whether it is up and how many workers answered. Timings,
# worker names (host:pid) and error texts (addresses, ports) are for platform operators.
PUBLIC_CHECK_FIELDS = ("status", "workers")


def _platform_operator(request: HttpRequest) -> bool:
    """A superuser of the platform, signed in on the platform's own host (a clinic's users,
    its administrators included, operate nothing of the machines)."""
    user = getattr(request, "user", None)
    return bool(
        tenant_connection.schema_name == get_public_schema_name()
        and user is not None
        and user.is_active
        and user.is_superuser
    )


def health(request: HttpRequest) -> JsonResponse:
    """Database, Redis and Celery workers: 200 when all are up, 503 otherwise. No sign-in
    needed (load balancers, uptime probes): anyone gets each component's state and the
    number of workers; a platform operator also gets timings, worker names and errors."""
    checks = {"database": _timed(_database), "redis": _timed(_redis_ping)}
    # What failed open since the process started (clinic.resilience): operators only.
    checks["redis"]["fail_open"] = dict(fail_open_counts)
    checks["celery"] = _timed(_celery) if checks["redis"]["status"] == "up" else {"status": "down"}
    healthy = all(check["status"] == "up" for check in checks.values())
    if not _platform_operator(request):
        checks = {
            name: {key: check[key] for key in PUBLIC_CHECK_FIELDS if key in check}
            for name, check in checks.items()
        }
    body = {"status": "ok" if healthy else "degraded", "checks": checks}
    return JsonResponse(body, status=200 if healthy else 503)


def landing(request: HttpRequest):
    return render(request, "platform/landing.html", {"base_domain": settings.CLINIC_BASE_DOMAIN})


def _problem(status: int, code: str, detail: str, **kwargs) -> JsonResponse:
    return JsonResponse(
        problem(status=status, code=code, detail=detail, **kwargs),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
    )


@require_http_methods(["GET", "DELETE"])
def answer_cache_stats(request: HttpRequest) -> HttpResponse:
    """`/answer-cache/` on the platform host, platform operators only (signed in to the
    platform admin): `GET` the answer cache's hits, misses and hit rate per clinic and kind
    (clinic.api.answer_stats); `DELETE` zeroes them (`?clinic=<schema>`: that clinic's only),
    recorded as an operator action. 503 when Redis does not answer."""
    if not _platform_operator(request):
        return _problem(403, "permission-denied", "Platform operators only.")
    try:
        if request.method == "GET":
            return JsonResponse(answer_stats())
        schema = request.GET.get("clinic")
        if schema is not None:
            known = (
                get_tenant_model()
                .objects.filter(schema_name=schema)
                .exclude(schema_name=get_public_schema_name())
            )
            if not known.exists() and schema not in answer_stats()["clinics"]:
                return _problem(
                    400,
                    "validation-error",
                    "No such clinic.",
                    errors={"clinic": [f"No clinic has the schema {schema!r}."]},
                )
        answer_stats_reset(schema, operator=request.user)
    except RedisUnavailableError:
        response = _problem(503, "redis-unavailable", "Redis did not answer: try again.")
        response["Retry-After"] = str(settings.REDIS_BREAKER_SECONDS)
        return response
    return HttpResponse(status=204)

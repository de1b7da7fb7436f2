import time

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.shortcuts import render

_redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


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
    return {"workers": [name for reply in replies for name in reply]}


def health(request: HttpRequest) -> JsonResponse:
    """Database, Redis and Celery workers: 200 when all are up, 503 otherwise. No auth."""
    checks = {"database": _timed(_database), "redis": _timed(_redis_ping)}
    checks["celery"] = _timed(_celery) if checks["redis"]["status"] == "up" else {"status": "down"}
    healthy = all(check["status"] == "up" for check in checks.values())
    body = {"status": "ok" if healthy else "degraded", "checks": checks}
    return JsonResponse(body, status=200 if healthy else 503)


def landing(request: HttpRequest):
    return render(request, "platform/landing.html", {"base_domain": settings.CLINIC_BASE_DOMAIN})

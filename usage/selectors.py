"""Reads of the usage rows: a clinic's own by day, and the platform's across clinics."""

import threading
import time
from datetime import date

from django.conf import settings
from django.db.models import QuerySet, Sum

from .models import ClinicPlan, UsageDay

_plans: dict[str, tuple[float, int]] = {}
_plans_lock = threading.Lock()
PLAN_CACHE_SECONDS = 30.0


def clinic_rate_limit(schema_name: str) -> int:
    """Requests per minute of all the API clients of a clinic together: its plan's, or the
    deployment's default. Cached per process for 30 s (a plan changes rarely)."""
    now = time.monotonic()
    cached = _plans.get(schema_name)
    if cached is not None and cached[0] > now:
        return cached[1]
    rate = (
        ClinicPlan.objects.filter(schema_name=schema_name)
        .values_list("api_requests_per_minute", flat=True)
        .first()
    ) or settings.API_CLINIC_RATE_PER_MINUTE
    with _plans_lock:
        _plans[schema_name] = (now + PLAN_CACHE_SECONDS, rate)
    return rate


def clinic_rate_cache_clear() -> None:
    _plans.clear()


def usage_days(*, schema_name: str, since: date, until: date) -> QuerySet[UsageDay]:
    """The clinic's rows from `since` to `until` (inclusive), newest day first."""
    return UsageDay.objects.filter(schema_name=schema_name, day__gte=since, day__lte=until)


def usage_by_clinic(*, since: date, until: date):
    """Per clinic and kind, the totals between the two days (the platform's page)."""
    return (
        UsageDay.objects.filter(day__gte=since, day__lte=until)
        .values("schema_name", "kind")
        .annotate(total=Sum("count"))
        .order_by("schema_name", "kind")
    )

"""The usage metering's per-clinic counts for `/metrics` (clinic/metrics.py), read at scrape
time: today's (UTC) rows already rolled up into UsageDay plus what still waits in Redis (the
day's hash and any renamed hash a rollup has not recorded yet). The series restart at 00:00 UTC,
which Prometheus' `rate()` and `increase()` read as a counter reset."""

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Sum
from django.utils import timezone
from django_tenants.utils import schema_context
from prometheus_client.core import CounterMetricFamily, Metric

from clinic import counting

from .counters import SEPARATOR, day_key, key_prefix, redis_client
from .models import UsageDay, UsageRollup


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def usage_today() -> dict[tuple[str, str], int]:
    """(schema, kind) -> today's count. Redis first, then PostgreSQL: a rollup that commits
    in between is found in UsageRollup and its hash is not counted twice."""
    counting.flush()  # this process's own counts first
    today = timezone.now().date()
    redis = redis_client()
    hashes = {day_key(today.isoformat()): redis.hgetall(day_key(today.isoformat()))}
    for key in redis.scan_iter(match=f"{key_prefix()}:rolling:{today.isoformat()}:*", count=1000):
        hashes[_text(key)] = redis.hgetall(key)
    totals: dict[tuple[str, str], int] = defaultdict(int)
    with schema_context("public"):
        rolled = set(UsageRollup.objects.filter(key__in=list(hashes)).values_list("key", flat=True))
        rows = UsageDay.objects.filter(day=today).values("schema_name", "kind")
        for row in rows.annotate(n=Sum("count")):
            totals[(row["schema_name"], row["kind"])] += row["n"]
    for key, fields in hashes.items():
        if key in rolled:
            continue
        for field, value in fields.items():
            schema, kind, *_ = _text(field).split(SEPARATOR)
            totals[(schema, kind)] += int(value)
    return totals


def usage_collector() -> Iterable[Metric]:
    family = CounterMetricFamily(
        "clinic_usage_today",
        "A clinic's metered usage today (UTC): API calls, smart-booking jobs, webhooks "
        "delivered, notifications sent (usage metering).",
        labels=["clinic", "kind"],
    )
    for (schema, kind), n in sorted(usage_today().items()):
        family.add_metric([schema, kind], n)
    return [family]

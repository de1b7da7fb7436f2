"""Counting usage in Redis: one hash per UTC day, shared by every clinic of the deployment.

A field of the hash is `schema <TAB> kind <TAB> subject <TAB> group` (the subject: who made
an API call, `client:<client id>` or `user:<kind>`; the group: the API's endpoint group), its
value the count. Counts are summed in each process and written a batch at a time
(`clinic.counting`: HINCRBY and EXPIRE, pipelined), whatever the number of clinics. The rollup
(`usage.rollup.usage_rollup`) renames a day's hash away before reading it, so a count lands in
exactly one rollup.
"""

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from clinic import counting
from clinic.tenancy import tenant_connection

API_CALL = "api_call"
SMART_BOOKING_JOB = "smart_booking_job"
WEBHOOK_DELIVERED = "webhook_delivered"
NOTIFICATION_SENT = "notification_sent"
KINDS = (API_CALL, SMART_BOOKING_JOB, WEBHOOK_DELIVERED, NOTIFICATION_SENT)

SEPARATOR = "\t"
# A day's hash outlives its day by this long if no rollup takes it (the beat runs every minute).
KEEP_SECONDS = 8 * 24 * 3600


def key_prefix() -> str:
    """Every usage key of this deployment (or test run) starts with this."""
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:usage"


def day_key(day: str) -> str:
    return f"{key_prefix()}:day:{day}"


def redis_client():
    """The Redis client of the default cache (django's RedisCache), for writes."""
    return cache._cache.get_client(write=True)


def field_of(schema: str, kind: str, subject: str, group: str) -> str:
    return SEPARATOR.join((schema, kind, subject, group))


def count(
    kind: str, n: int = 1, *, subject: str = "", group: str = "", schema: str | None = None
) -> None:
    """Count `n` of `kind` (one of KINDS) for the current clinic (or `schema`), today (UTC).

    Summed in this process and written to Redis within `COUNTS_FLUSH_SECONDS`
    (clinic.counting): no round trip here, and a Redis outage delays counts, never a request."""
    if kind not in KINDS:
        raise ValueError(f"Unknown usage kind {kind!r}.")
    schema = schema or tenant_connection.schema_name
    if not settings.USAGE_METERING or schema == "public" or n <= 0:
        return
    key = day_key(timezone.now().date().isoformat())
    clean = (value.replace(SEPARATOR, " ")[:100] for value in (subject, group))
    counting.hash_add(key, field_of(schema, kind, *clean), n, expire=KEEP_SECONDS)

"""Moving the Redis counters into PostgreSQL (`UsageDay`), exactly once.

Each day's hash is first RENAMEd to a key of its own (atomic: counts made after it start a new
hash), then read and added into UsageDay in one transaction that also records the renamed key
(`UsageRollup`, unique), then deleted. A rollup killed after its commit finds its key recorded
and only deletes it; one killed before its commit leaves the renamed hash, which the next
rollup adds. Counts made during the rollup wait in the new hash for the next one.
"""

import uuid
from collections import defaultdict

from django.db import connection, transaction
from redis.exceptions import ResponseError

from clinic import counting

from .counters import SEPARATOR, day_key, key_prefix, redis_client
from .models import UsageDay, UsageRollup

_UPSERT = (
    f"INSERT INTO public.{UsageDay._meta.db_table} "
    '(schema_name, day, kind, subject, "group", count) '
    "SELECT * FROM unnest(%s::text[], %s::date[], %s::text[], %s::text[], %s::text[], "
    "%s::bigint[]) "
    'ON CONFLICT (schema_name, day, kind, subject, "group") '
    f"DO UPDATE SET count = public.{UsageDay._meta.db_table}.count + EXCLUDED.count"
)


def _rolling_keys(redis) -> list[str]:
    """Rename every day's hash to a rolling key; return every rolling key (older ones left by
    a rollup that died included)."""
    prefix = key_prefix()
    for key in redis.scan_iter(match=day_key("*"), count=1000):
        name = key.decode() if isinstance(key, bytes) else key
        day = name.rsplit(":", 1)[1]
        try:
            redis.rename(name, f"{prefix}:rolling:{day}:{uuid.uuid4().hex}")
        except ResponseError:  # gone since the scan (another rollup took it)
            continue
    return sorted(
        key.decode() if isinstance(key, bytes) else key
        for key in redis.scan_iter(match=f"{prefix}:rolling:*", count=1000)
    )


def usage_rollup() -> int:
    """Add every counter waiting in Redis into UsageDay; return the number of rows touched."""
    counting.flush()  # this process's own counts first
    redis = redis_client()
    touched = 0
    for key in _rolling_keys(redis):
        day = key.split(":")[-2]
        sums: dict[tuple[str, str, str, str], int] = defaultdict(int)
        for field, value in redis.hgetall(key).items():
            name = field.decode() if isinstance(field, bytes) else field
            parts = name.split(SEPARATOR)
            if len(parts) != 4:
                continue
            sums[(parts[0], parts[1], parts[2], parts[3])] += int(value)
        with transaction.atomic():
            _, created = UsageRollup.objects.get_or_create(key=key)
            if created and sums:
                rows = list(sums.items())
                with connection.cursor() as cursor:
                    cursor.execute(
                        _UPSERT,
                        [
                            [schema for (schema, _, _, _), _ in rows],
                            [day] * len(rows),
                            [kind for (_, kind, _, _), _ in rows],
                            [subject for (_, _, subject, _), _ in rows],
                            [group for (_, _, _, group), _ in rows],
                            [n for _, n in rows],
                        ],
                    )
                touched += len(rows)
        redis.delete(key)
    return touched

"""Usage counted in Redis and rolled up into PostgreSQL: totals equal what was counted, once."""

import pytest
import time_machine
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import schema_context

import usage
from clinic import counting
from clinic.resilience import fail_open_counts, redis_breaker
from usage import counters
from usage.models import UsageDay, UsageRollup
from usage.rollup import usage_rollup

MIDDAY = "2026-12-09T12:00:00+00:00"  # far from midnight, whatever instant the run chose


@pytest.fixture
def clean_usage(db):
    redis = counters.redis_client()

    def clean() -> None:
        counting.flush()  # earlier tests' counts land first, then go
        for key in redis.scan_iter(match=f"{counters.key_prefix()}:*"):
            redis.delete(key)

    clean()
    yield redis
    clean()


def _totals() -> dict:
    with schema_context("public"):
        return {
            (row.schema_name, row.kind, row.subject, row.group): row.count
            for row in UsageDay.objects.all()
        }


@time_machine.travel(MIDDAY)  # the day of a count and of its rollup: one UTC day
def test_rollup_totals_equal_the_counts_per_clinic_kind_subject_and_group(
    clean_usage, acme, globex
):
    with schema_context(acme.schema_name):
        for _ in range(3):
            usage.count(usage.API_CALL, subject="client:abc", group="appointments")
        usage.count(usage.API_CALL, subject="user:staff", group="patients")
        usage.count(usage.NOTIFICATION_SENT, 4, group="email")
    usage.count(usage.WEBHOOK_DELIVERED, 2, schema=globex.schema_name)
    usage.count(usage.API_CALL)  # public: the platform is no clinic, nothing counted

    assert usage_rollup() == 4
    today = timezone.now().date()
    assert _totals() == {
        (acme.schema_name, "api_call", "client:abc", "appointments"): 3,
        (acme.schema_name, "api_call", "user:staff", "patients"): 1,
        (acme.schema_name, "notification_sent", "", "email"): 4,
        (globex.schema_name, "webhook_delivered", "", ""): 2,
    }
    with schema_context("public"):
        assert set(UsageDay.objects.values_list("day", flat=True)) == {today}

    # nothing new: a second rollup adds nothing; new counts are added to the same rows
    assert usage_rollup() == 0
    usage.count(usage.WEBHOOK_DELIVERED, schema=globex.schema_name)
    usage_rollup()
    assert _totals()[(globex.schema_name, "webhook_delivered", "", "")] == 3


@time_machine.travel(MIDDAY)  # the day of a count and of its rollup: one UTC day
def test_a_rollup_that_died_before_deleting_its_hash_is_not_added_twice(clean_usage, acme):
    usage.count(usage.API_CALL, 5, schema=acme.schema_name, subject="user:staff")
    day = timezone.now().date().isoformat()
    usage_rollup()
    with schema_context("public"):
        (rolled,) = UsageRollup.objects.values_list("key", flat=True)
    # the hash the rollup added, back as if its DEL had never run
    clean_usage.hset(rolled, counters.field_of(acme.schema_name, "api_call", "user:staff", ""), 5)
    assert rolled.split(":")[-2] == day

    usage_rollup()

    assert _totals() == {(acme.schema_name, "api_call", "user:staff", ""): 5}
    assert not clean_usage.exists(rolled)


@time_machine.travel(MIDDAY)  # the day of a count and of its rollup: one UTC day
def test_counts_made_while_redis_is_down_are_written_once_it_is_back(clean_usage, acme, caplog):
    """Counting never waits for Redis (the sums are this process's); a batch Redis refuses is
    kept, with what is counted after it, and written whole on the next try."""
    redis_breaker.reset()
    before = fail_open_counts["counts"]
    dead = {
        "default": {
            "BACKEND": "clinic.api.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "KEY_PREFIX": counters.key_prefix().removesuffix(":usage"),
        }
    }
    with override_settings(CACHES=dead), schema_context(acme.schema_name):
        usage.count(usage.API_CALL)  # no exception, no round trip
        assert counting.flush() is False  # refused: kept
        usage.count(usage.API_CALL, 2)
        assert counting.flush() is False
    assert fail_open_counts["counts"] > before and "redis unavailable, counts" in caplog.text
    redis_breaker.reset()
    assert counting.flush() is True
    field = counters.field_of(acme.schema_name, usage.API_CALL, "", "")
    assert clean_usage.hget(counters.day_key("2026-12-09"), field) == b"3"
    assert 0 < clean_usage.ttl(counters.day_key("2026-12-09")) <= counters.KEEP_SECONDS
    assert counting.flush() is True  # nothing twice
    assert clean_usage.hget(counters.day_key("2026-12-09"), field) == b"3"


def test_a_process_writes_its_counts_within_the_interval_by_itself(clean_usage, acme, settings):
    """The process's writer thread: a count reaches Redis with no reader asking for it."""
    import time

    key, field = counters.day_key(timezone.now().date().isoformat()), "x"
    counting.hash_add(key, field, 5, expire=60)
    deadline = time.monotonic() + 10 * settings.COUNTS_FLUSH_SECONDS + 5
    while clean_usage.hget(key, field) != b"5":
        assert time.monotonic() < deadline, "not written within the interval"
        time.sleep(0.05)


@time_machine.travel(MIDDAY)  # the day of a count and of its rollup: one UTC day
def test_an_unknown_kind_is_a_programming_error(clean_usage):
    with pytest.raises(ValueError, match="Unknown usage kind"):
        usage.count("pageviews")

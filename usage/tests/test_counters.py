"""Usage counted in Redis and rolled up into PostgreSQL: totals equal what was counted, once."""

import pytest
import time_machine
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import schema_context

import usage
from usage import counters
from usage.models import UsageDay, UsageRollup
from usage.rollup import usage_rollup

MIDDAY = "2026-12-09T12:00:00+00:00"  # far from midnight, whatever instant the run chose


@pytest.fixture
def clean_usage(db):
    redis = counters.redis_client()
    for key in redis.scan_iter(match=f"{counters.key_prefix()}:*"):
        redis.delete(key)
    counters._paused_until = 0.0
    yield redis
    for key in redis.scan_iter(match=f"{counters.key_prefix()}:*"):
        redis.delete(key)
    counters._paused_until = 0.0


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
def test_counting_fails_open_when_redis_is_down(clean_usage, acme, caplog):
    dead = {
        "default": {
            "BACKEND": "clinic.api.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "KEY_PREFIX": counters.key_prefix().removesuffix(":usage"),
        }
    }
    with override_settings(CACHES=dead), schema_context(acme.schema_name):
        usage.count(usage.API_CALL)  # no exception
        assert counters._paused_until > 0
        usage.count(usage.API_CALL)  # paused: not even tried
    assert "Redis unreachable" in caplog.text
    assert caplog.text.count("Redis unreachable") == 1


@time_machine.travel(MIDDAY)  # the day of a count and of its rollup: one UTC day
def test_an_unknown_kind_is_a_programming_error(clean_usage):
    with pytest.raises(ValueError, match="Unknown usage kind"):
        usage.count("pageviews")

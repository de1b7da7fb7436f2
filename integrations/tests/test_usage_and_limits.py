"""API calls are metered per clinic, client (or kind of user) and endpoint group, and API
clients are held to their rate and their clinic's (sliding window, RateLimit-* headers, 429)."""

from datetime import timedelta

import pytest
import time_machine
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import schema_context

from clinic import counting
from clinic.permissions import CLINIC_ADMIN
from integrations import limits
from integrations.tests.test_api_clients import bearer, create_client, token_for
from tests.fixtures import ClinicClient
from usage import counters
from usage.models import ClinicPlan
from usage.rollup import usage_rollup
from usage.selectors import clinic_rate_cache_clear


@pytest.fixture
def admin_api(acme, make_user, client_for):
    return client_for(acme, make_user(acme, CLINIC_ADMIN))


@pytest.fixture
def clean_redis(db):
    redis = counters.redis_client()

    def wipe() -> None:
        counting.flush()  # earlier tests' counts land first, then go
        for pattern in (f"{counters.key_prefix()}:*", f"{limits._prefix()}:*"):
            for key in redis.scan_iter(match=pattern):
                redis.delete(key)
        clinic_rate_cache_clear()

    wipe()
    yield redis
    wipe()


def test_metering_totals_equal_the_requests_the_test_made(
    acme, globex, admin_api, make_user, client_for, clean_redis
):
    created = create_client(admin_api, "scheduling:read", "practice:read")  # staff: 1
    api = bearer(acme, token_for(acme, created)["access_token"])  # anonymous: 1 (oauth)
    for _ in range(3):
        assert api.get("/api/v1/appointments/").status_code == 200
    for _ in range(2):
        assert api.get("/api/v1/patients/").status_code == 200
    assert api.get("/api/v1/api-clients/").status_code == 403  # refused calls count too
    assert ClinicClient(acme).get("/api/v1/no-such-thing/").status_code == 404
    ClinicClient(acme).get("/")  # a page, not the API: not an API call

    assert usage_rollup() == 6
    response = admin_api.get("/api/v1/usage/?page_size=100")
    assert response.status_code == 200
    rows = {
        (row["kind"], row["subject"], row["group"]): row["count"]
        for row in response.json()["results"]
    }
    client = f"client:{created['client_id']}"
    assert rows == {
        ("api_call", "user:staff", "api-clients"): 1,
        ("api_call", "user:anonymous", "oauth"): 1,
        ("api_call", client, "appointments"): 3,
        ("api_call", client, "patients"): 2,
        ("api_call", client, "api-clients"): 1,
        ("api_call", "user:anonymous", "unmatched"): 1,
    }
    assert {row["day"] for row in response.json()["results"]} == {timezone.now().date().isoformat()}
    # another clinic sees none of it
    other = client_for(globex, make_user(globex, CLINIC_ADMIN)).get("/api/v1/usage/")
    assert other.status_code == 200 and other.json()["results"] == []
    bad = admin_api.get("/api/v1/usage/?since=2026-12-10&until=2026-12-01")
    assert bad.status_code == 400 and "since" in bad.json()["errors"]


def _next_minute(seconds: int):
    """An instant `seconds` into the next minute of the run's clock (never before now: tokens
    issued now would be from the future)."""
    now = timezone.now()
    return now.replace(second=0, microsecond=0) + timedelta(minutes=1, seconds=seconds)


def test_a_client_over_its_rate_gets_a_429_problem_with_retry_after(acme, admin_api, clean_redis):
    created = create_client(admin_api, "scheduling:read", rate_limit_per_minute=3)
    api = bearer(acme, token_for(acme, created)["access_token"])
    start = _next_minute(10)
    with time_machine.travel(start, tick=False):
        for remaining in (2, 1, 0):
            response = api.get("/api/v1/appointments/")
            assert response.status_code == 200
            assert response["RateLimit-Limit"] == "3"
            assert response["RateLimit-Remaining"] == str(remaining)
            assert response["RateLimit-Reset"] == "50"
        refused = api.get("/api/v1/appointments/")
        assert refused.status_code == 429
        assert refused["Retry-After"] == "50" and refused["RateLimit-Remaining"] == "0"
        body = refused.json()
        assert body["status"] == 429 and body["code"] == "throttled"
    # a minute on, the last minute still weighs 50/60 of its 4: a sliding window, not fixed
    with time_machine.travel(start + timedelta(minutes=1), tick=False):
        assert api.get("/api/v1/appointments/").status_code == 429
    with time_machine.travel(start + timedelta(minutes=3), tick=False):
        assert api.get("/api/v1/appointments/").status_code == 200
    # people are not held to a client's limits, and carry no such headers
    assert "RateLimit-Limit" not in admin_api.get("/api/v1/appointments/")


def test_the_clinics_plan_limits_all_its_clients_together(acme, admin_api, clean_redis):
    with schema_context("public"):
        ClinicPlan.objects.create(schema_name=acme.schema_name, api_requests_per_minute=2)
    clinic_rate_cache_clear()
    first = bearer(
        acme, token_for(acme, create_client(admin_api, "scheduling:read"))["access_token"]
    )
    second = bearer(
        acme, token_for(acme, create_client(admin_api, "scheduling:read"))["access_token"]
    )
    with time_machine.travel(_next_minute(30), tick=False):
        assert first.get("/api/v1/appointments/").status_code == 200
        assert first.get("/api/v1/appointments/")["RateLimit-Remaining"] == "0"
        refused = second.get("/api/v1/appointments/")
        assert refused.status_code == 429 and refused["RateLimit-Limit"] == "2"


def test_limits_and_metering_fail_open_when_redis_is_down(acme, admin_api, clean_redis):
    created = create_client(admin_api, "scheduling:read", rate_limit_per_minute=1)
    api = bearer(acme, token_for(acme, created)["access_token"])
    dead = {
        "default": {
            "BACKEND": "clinic.api.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "KEY_PREFIX": counters.key_prefix().removesuffix(":usage"),
        }
    }
    with override_settings(CACHES=dead):
        for _ in range(3):  # over its rate of 1, but nobody can count: let through
            response = api.get("/api/v1/appointments/")
            assert response.status_code == 200
            assert "RateLimit-Limit" not in response

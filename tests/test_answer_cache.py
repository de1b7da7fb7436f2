"""The shared cache of public answers (practitioner search, availability): served while the
clinic's data version holds, recomputed once a write it depends on commits, never crossing
clinics, never serving staff the public answer; its hits and misses counted per clinic and kind
for the platform operator (`/answer-cache/` on the platform host), each kind kept its own
seconds."""

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.conf import settings as django_settings
from django.contrib.admin.models import LogEntry
from django.core.cache import cache
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.models import User
from clinic import api
from clinic.api import ANSWERS_VERSION_KEY
from clinic.permissions import CLINIC_ADMIN, FRONT_DESK, PATIENT
from clinic.resilience import fail_open_counts, redis_breaker
from integrations.tests.test_api_clients import bearer, create_client, token_for
from scheduling.services import appointment_book, appointment_cancel, appointment_reschedule
from scheduling.tests import factories as f
from tests.fixtures import ClinicClient, in_clinic, session_client

SEARCH = "/api/v1/practitioners/?specialty=cardiology"


@pytest.fixture(autouse=True)
def frozen_clock():
    """The clock stands still: availability answers are shared within a minute of their own,
    and a test whose two requests straddled its end would see a rebuilt answer."""
    with time_machine.travel(time.time(), tick=False):
        yield


@pytest.fixture
def answers(settings, acme, globex):
    """The cache on (tests turn it off: their writes never commit), from a fresh version."""
    settings.ANSWER_CACHE_SECONDS = 30
    for clinic in (acme, globex):
        with in_clinic(clinic):
            cache.set(ANSWERS_VERSION_KEY, uuid.uuid4().hex, None)


@pytest.fixture
def cardiologist(acme):
    with in_clinic(acme):
        return f.practitioner(name="Dr. Before", specialties=(f.specialty("cardiology"),))


def _names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["display_name"] for row in response.json()["results"]]


def test_search_answer_is_shared_until_a_directory_change_commits(
    answers, acme, cardiologist, django_assert_num_queries, django_capture_on_commit_callbacks
):
    anon = ClinicClient(acme)
    first = anon.get(SEARCH)
    assert _names(first) == ["Dr. Before"]
    with django_assert_num_queries(0):  # from Redis: no query at all
        again = ClinicClient(acme).get(SEARCH)
    assert again.content == first.content

    with in_clinic(acme):
        cardiologist.display_name = "Dr. After"
        cardiologist.save()  # not committed yet (the test's transaction): no change seen
    assert _names(anon.get(SEARCH)) == ["Dr. Before"]
    with in_clinic(acme), django_capture_on_commit_callbacks(execute=True):
        cardiologist.save()  # ... and committed
    assert _names(anon.get(SEARCH)) == ["Dr. After"]

    # Another page, size or filter is another answer.
    assert _names(anon.get(SEARCH + "&language=fr")) == []


def test_staff_and_other_clinics_never_get_the_shared_answer(
    answers, acme, globex, cardiologist, make_user, client_for
):
    assert _names(ClinicClient(acme).get(SEARCH)) == ["Dr. Before"]
    assert _names(ClinicClient(globex).get(SEARCH)) == []  # same path, another clinic
    staff = client_for(acme, make_user(acme, "front_desk")).get(SEARCH)
    assert "is_active" in staff.json()["results"][0]  # the staff view, computed for them


def test_availability_answer_is_shared_until_a_booking_commits(
    answers,
    acme,
    cardiologist,
    monkeypatch,
    django_assert_num_queries,
    django_capture_on_commit_callbacks,
):
    from scheduling.api import availability as endpoint

    with in_clinic(acme):
        visit = f.appointment_type(cardiologist, minutes=60)
        patient = f.patient()
    day = f.next_weekday(2)
    params = {"practitioner": cardiologist.pk, "appointment_type": visit.pk,
              "start": day.isoformat(), "end": day.isoformat()}  # fmt: skip
    anon = ClinicClient(acme)

    def starts() -> list[str]:
        response = anon.get("/api/v1/availability/", params)
        assert response.status_code == 200, response.content
        return [slot["start"] for slot in response.json()["practitioners"][0]["slots"]]

    # The answer's own minute begins with the clock's (its offset is a digest of its
    # parameters), and both reads are at that minute's start: the answer is shared for its
    # whole 30 s. (At a frozen instant in its minute's last second, it was stored for less than
    # a second, or not at all, and the second read computed it again: CI at 23:59:40.)
    monkeypatch.setattr(endpoint, "zlib", SimpleNamespace(crc32=lambda data: 0))
    with time_machine.travel(timezone.now().replace(second=0, microsecond=0), tick=False):
        before = starts()
        nine = f.local(day, 9)
        assert nine.isoformat() in before
        with django_assert_num_queries(0):
            assert starts() == before
    with in_clinic(acme), django_capture_on_commit_callbacks(execute=True):
        appointment_book(patient=patient, practitioner=cardiologist, appointment_type=visit,
                         start=nine)  # fmt: skip
    after = starts()
    assert nine.isoformat() not in after and len(after) < len(before)


def test_a_visit_makes_stale_only_the_availability_of_its_practitioner_and_weeks(
    answers, acme, cardiologist, monkeypatch, django_capture_on_commit_callbacks
):
    """A booking, a move and a cancellation make stale the availability answers of their
    practitioner over the weeks they touch (before and after), and the clinic-wide answers
    (a specialty's) over those weeks; a colleague's answers, and other weeks', stay shared.
    A change whose earlier place is not known makes every answer of the clinic stale. The
    search's answers hold: they show the next free slot, kept by its own refresh."""
    from practice.models import ClinicSettings
    from scheduling.api import availability as endpoint
    from scheduling.models import Appointment

    with in_clinic(acme):
        colleague = f.practitioner(name="Dr. Other", specialties=(f.specialty("cardiology"),))
        visit = f.appointment_type(cardiologist, colleague, minutes=60)
        patient = f.patient()
        ClinicSettings.load()  # made on first use: a change of the whole clinic
    built = []
    real = endpoint.availability_answer
    monkeypatch.setattr(endpoint, "availability_answer", lambda data: built.append(1) or real(data))
    soon = f.next_weekday(2)
    later = soon + timedelta(weeks=6)
    anon = ClinicClient(acme)

    def ask(day, who) -> list[str]:
        who = {"specialty": "cardiology"} if who is None else {"practitioner": who.pk}
        params = {**who, "appointment_type": visit.pk, "start": day.isoformat(),
                  "end": day.isoformat()}  # fmt: skip
        response = anon.get("/api/v1/availability/", params)
        assert response.status_code == 200, response.content
        return [s["start"] for p in response.json()["practitioners"] for s in p["slots"]]

    asks = [(soon, cardiologist), (soon, colleague), (soon, None), (later, cardiologist),
            (later, colleague), (later, None)]  # fmt: skip

    def rebuilt() -> list[int]:
        """Which of the asks were computed again."""
        flags = []
        for day, who in asks:
            built.clear()
            ask(day, who)
            flags.append(len(built))
        return flags

    # Every answer's own minute begins with the clock's (its offset is a digest of its
    # parameters), and the clock stands at a minute's start: each answer is shared for its
    # whole 30 s, whatever the instant of the run and the ids of the rows.
    monkeypatch.setattr(endpoint, "zlib", SimpleNamespace(crc32=lambda data: 0))
    with time_machine.travel(timezone.now().replace(second=0, microsecond=0), tick=False):
        assert rebuilt() == [1] * 6  # nothing shared yet
        assert rebuilt() == [0] * 6
        assert anon.get(SEARCH).status_code == 200
        with in_clinic(acme), django_capture_on_commit_callbacks(execute=True):
            booked = appointment_book(patient=patient, practitioner=cardiologist,
                                      appointment_type=visit, start=f.local(later, 9))  # fmt: skip
        assert rebuilt() == [0, 0, 0, 1, 0, 1]  # the practitioner's and the clinic's, later
        assert f.local(later, 9).isoformat() not in ask(later, cardiologist)
        with CaptureQueriesContext(connection) as search:
            assert anon.get(SEARCH).status_code == 200
        assert not search.captured_queries  # still shared

        with in_clinic(acme), django_capture_on_commit_callbacks(execute=True):
            appointment_reschedule(appointment=booked, start=f.local(soon, 10))
        assert rebuilt() == [1, 0, 1, 1, 0, 1]  # the weeks it left and the weeks it took
        assert f.local(soon, 10).isoformat() not in ask(soon, cardiologist)
        assert f.local(later, 9).isoformat() in ask(later, cardiologist)

        with in_clinic(acme), django_capture_on_commit_callbacks(execute=True):
            appointment_cancel(appointment=Appointment.objects.get(pk=booked.pk))
        assert rebuilt() == [1, 0, 1, 0, 0, 0]
        assert f.local(soon, 10).isoformat() in ask(soon, cardiologist)

        with in_clinic(acme), django_capture_on_commit_callbacks(execute=True):
            partial = Appointment.objects.only("pk", "notes").get(pk=booked.pk)
            partial.notes = "called back"
            partial.save(update_fields=["notes"])
        assert rebuilt() == [1] * 6  # where it was is not known: everything


def test_availability_answers_do_not_all_expire_at_the_clocks_minute(
    answers, acme, cardiologist, monkeypatch
):
    """Each availability answer is shared for a minute at most, but its minute begins at its
    own second: when the clock's minute turns, the answers of six windows are not all rebuilt
    in that second (with the clock's minute they were, by every request then in flight);
    60 s later every one of them has been rebuilt."""
    from scheduling.api import availability as endpoint

    with in_clinic(acme):
        visit = f.appointment_type(cardiologist, minutes=60)
    built = []
    real = endpoint.availability_answer
    monkeypatch.setattr(endpoint, "availability_answer", lambda data: built.append(1) or real(data))
    clock = [(int(time.time()) // 60 + 1) * 60 - 0.5]  # half a second before a minute turns
    monkeypatch.setattr(endpoint.time, "time", lambda: clock[0])
    anon = ClinicClient(acme)

    def ask_all() -> int:
        built.clear()
        for n in range(6):
            day = (f.next_weekday(2) + timedelta(days=7 * n)).isoformat()
            response = anon.get(
                "/api/v1/availability/",
                {"practitioner": cardiologist.pk, "appointment_type": visit.pk,
                 "start": day, "end": day},
            )  # fmt: skip
            assert response.status_code == 200, response.content
        return len(built)

    assert ask_all() == 6  # nothing cached yet
    assert ask_all() <= 1  # shared (but for an answer whose own minute ends in this second)
    clock[0] += 1  # the clock's minute turns
    assert ask_all() <= 1  # at most that one
    clock[0] += 60
    assert ask_all() == 6


# Statistics: hits and misses per clinic and kind, for the platform operator -----------------

STATS = "/answer-cache/"


@pytest.fixture
def no_stats():
    """Counters from nothing (other tests of the run count too), the Redis breaker closed."""
    redis_breaker.reset()
    api.answer_stats_reset()
    yield
    redis_breaker.reset()


@pytest.fixture
def operator(db) -> Client:
    """A platform operator signed in on the platform host."""
    with schema_context("public"):
        user = User.objects.create_superuser("stats-op@platform.test", "operator-password-1")
        client = Client(HTTP_HOST="localhost")
        client.force_login(user)
    return client


def _availability(clinic, practitioner, visit) -> dict:
    day = f.next_weekday(2).isoformat()
    response = ClinicClient(clinic).get(
        "/api/v1/availability/",
        {"practitioner": practitioner.pk, "appointment_type": visit.pk, "start": day, "end": day},
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_hits_and_misses_are_counted_per_clinic_and_kind_and_reset(
    answers, no_stats, operator, acme, globex, cardiologist
):
    with in_clinic(acme):
        visit = f.appointment_type(cardiologist, minutes=60)
    with in_clinic(globex):
        f.practitioner(name="Dr. Globex", specialties=(f.specialty("cardiology"),))
    now = timezone.now()  # the clock stands still (frozen_clock): every count is at this instant
    for _ in range(3):
        assert _names(ClinicClient(acme).get(SEARCH)) == ["Dr. Before"]  # a miss, then hits
    assert _names(ClinicClient(acme).get(SEARCH + "&language=fr")) == []  # another answer
    _availability(acme, cardiologist, visit)
    assert _names(ClinicClient(globex).get(SEARCH)) == ["Dr. Globex"]

    stats = operator.get(STATS)
    assert stats.status_code == 200, stats.content
    body = stats.json()
    since = now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    assert body["clinics"] == {
        acme.schema_name: {
            "practitioner-search": {"hits": 2, "misses": 2, "hit_rate": 0.5, "since": since},
            "availability": {"hits": 0, "misses": 1, "hit_rate": 0.0, "since": since},
        },
        globex.schema_name: {
            "practitioner-search": {"hits": 0, "misses": 1, "hit_rate": 0.0, "since": since},
        },
    }
    assert body["kinds"]["practitioner-search"] == {
        "seconds": 30, "hits": 2, "misses": 3, "hit_rate": 0.4,
    }  # fmt: skip
    assert body["kinds"]["availability"]["misses"] == 1

    # One clinic's counters go; the other's stay. The reset is an operator action on record.
    assert operator.delete(f"{STATS}?clinic={acme.schema_name}").status_code == 204
    assert set(operator.get(STATS).json()["clinics"]) == {globex.schema_name}
    with schema_context("public"):
        entry = LogEntry.objects.latest("action_time")
    assert entry.user.email == "stats-op@platform.test" and entry.object_id == acme.schema_name
    assert "Reset the answer-cache statistics of clinic acme" in entry.change_message

    # Counting starts again at the next lookup: a hit now (the answer is still cached).
    ClinicClient(acme).get(SEARCH)
    again = operator.get(STATS).json()["clinics"][acme.schema_name]
    assert again == {"practitioner-search": {"hits": 1, "misses": 0, "hit_rate": 1.0,
                                             "since": since}}  # fmt: skip

    assert operator.delete(STATS).status_code == 204  # every clinic
    after = operator.get(STATS).json()
    assert after["clinics"] == {} and after["reset_at"] == since
    assert after["kinds"]["practitioner-search"]["hit_rate"] is None


def test_a_reset_names_an_unknown_clinic(answers, no_stats, operator, acme):
    ClinicClient(acme).get(SEARCH)
    refused = operator.delete(f"{STATS}?clinic=nosuch")
    assert refused.status_code == 400
    assert refused["Content-Type"] == "application/problem+json"
    assert list(refused.json()["errors"]) == ["clinic"]
    assert acme.schema_name in operator.get(STATS).json()["clinics"]  # nothing reset
    assert operator.post(STATS).status_code == 405


def test_only_platform_operators_read_or_reset_the_statistics(
    answers, no_stats, acme, make_user, client_for
):
    ClinicClient(acme).get(SEARCH)
    with schema_context("public"):
        staff = User.objects.create_user("not-operator@platform.test", "a-long-test-password")
        signed_in = Client(HTTP_HOST="localhost")
        signed_in.force_login(staff)  # a platform user, not a superuser
    admin_api = client_for(acme, make_user(acme, CLINIC_ADMIN))
    created = create_client(admin_api, "scheduling:read", "practice:read")
    client_token = token_for(acme, created)["access_token"]
    visitors = {"anonymous": Client(HTTP_HOST="localhost"), "platform user": signed_in}
    for role in (CLINIC_ADMIN, FRONT_DESK, PATIENT):  # their tokens, sent to the platform host
        token = client_for(acme, make_user(acme, role)).defaults["HTTP_AUTHORIZATION"]
        visitors[role] = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=token)
    visitors["API client"] = Client(HTTP_HOST="localhost",
                                    HTTP_AUTHORIZATION=f"Bearer {client_token}")  # fmt: skip
    for who, client in visitors.items():
        for method in ("get", "delete"):
            response = getattr(client, method)(STATS)
            assert response.status_code == 403, (who, method, response.status_code)
            assert response.json()["code"] == "permission-denied"
    # Not on a clinic's host, whoever asks (its clinic admin signed in there included).
    clinic_admin = session_client(acme, make_user(acme, CLINIC_ADMIN))
    for client in (ClinicClient(acme), clinic_admin, bearer(acme, client_token)):
        assert client.get(STATS).status_code == 404
        assert client.delete(STATS).status_code == 404
    assert api.answer_stats()["clinics"][acme.schema_name]["practitioner-search"]["misses"] == 1


def test_each_kind_has_its_own_seconds(answers, no_stats, settings, acme, cardiologist,
                                       django_assert_num_queries):  # fmt: skip
    """The search's answers kept 120 s, availability's not at all (0), the global 30 s for a
    kind not named; at an instant the test chooses (a search answer holds until the soonest
    next-available slot it names at most: there is none here)."""
    settings.ANSWER_CACHE_SECONDS_BY_KIND = {"practitioner-search": 120, "availability": 0}
    with in_clinic(acme):
        visit = f.appointment_type(cardiologist, minutes=60)
    client = api._stats_client()
    entries = f"{acme.schema_name}:{settings.CACHES['default']['KEY_PREFIX']}:*:answer:*"
    for key in client.scan_iter(match=entries):  # earlier tests' answers
        client.delete(key)
    with time_machine.travel(datetime(2026, 12, 9, 15, 0, 7, tzinfo=UTC), tick=False):
        assert _names(ClinicClient(acme).get(SEARCH)) == ["Dr. Before"]
        keys = list(client.scan_iter(match=entries))
        assert [k.decode().rsplit(":", 2)[1] for k in keys] == ["practitioner-search"]
        assert 110 < client.ttl(keys[0]) <= 120  # Redis expires it: the kind's seconds
        with django_assert_num_queries(0):
            ClinicClient(acme).get(SEARCH)  # shared
        first = _availability(acme, cardiologist, visit)
        with CaptureQueriesContext(connection) as queries:
            assert _availability(acme, cardiologist, visit) == first
        assert len(queries) >= 1  # computed again (the type and the inputs, one round trip)
    stats = api.answer_stats()
    assert stats["kinds"]["availability"]["seconds"] == 0
    assert stats["kinds"]["practitioner-search"]["seconds"] == 120
    assert "availability" not in stats["clinics"][acme.schema_name]  # a kind off is not counted
    settings.ANSWER_CACHE_SECONDS_BY_KIND = {}
    assert api.answer_cache_seconds("availability") == 30  # the global seconds again


def test_the_seconds_by_kind_come_from_the_environment():
    code = "from django.conf import settings; print(settings.ANSWER_CACHE_SECONDS_BY_KIND)"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "clinic.settings", "DEBUG": "1"}

    def run(value: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
            env={**env, "ANSWER_CACHE_SECONDS_BY_KIND": value},
        )  # fmt: skip

    good = run("availability=60,practitioner-search=300")
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip() == "{'availability': 60, 'practitioner-search': 300}"
    for bad in ("availability=soon", "calendar=60"):
        refused = run(bad)
        assert refused.returncode != 0 and "ANSWER_CACHE_SECONDS_BY_KIND" in refused.stderr


def test_answers_and_counting_go_on_when_redis_does_not_answer(
    answers, no_stats, operator, acme, cardiologist
):
    """The answers are computed; the lookups are counted in the process (no round trip) and
    reach Redis once it answers again: delayed, not lost."""
    before = fail_open_counts["counts"]
    dead = {
        "default": {
            **django_settings.CACHES["default"],
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens: refused at once
        }
    }
    with override_settings(CACHES=dead):
        for _ in range(2):
            started = time.perf_counter()
            assert _names(ClinicClient(acme).get(SEARCH)) == ["Dr. Before"]  # computed
            assert time.perf_counter() - started < 2
        unavailable = operator.get(STATS)  # its own process's counts are tried first
        assert unavailable.status_code == 503 and unavailable["Retry-After"]
        assert unavailable.json()["code"] == "redis-unavailable"
        assert fail_open_counts["counts"] > before  # the batch was refused, and kept
    redis_breaker.reset()
    assert api.answer_stats()["clinics"][acme.schema_name]["practitioner-search"]["misses"] == 2


def test_the_platform_admin_shows_the_statistics_and_resets_them(
    answers, no_stats, operator, acme, globex
):
    ClinicClient(acme).get(SEARCH)
    ClinicClient(acme).get(SEARCH)
    ClinicClient(globex).get(SEARCH)
    index = operator.get("/admin/")
    assert index.status_code == 200 and b'href="/admin/answer-cache/"' in index.content
    page = operator.get("/admin/answer-cache/")
    assert page.status_code == 200
    rows = {(row["clinic"], row["kind"]): (row["hits"], row["misses"])
            for row in page.context["rows"]}  # fmt: skip
    assert rows == {
        (acme.schema_name, "practitioner-search"): (1, 1),
        (globex.schema_name, "practitioner-search"): (0, 1),
    }
    assert b"50%" in page.content
    reset = operator.post("/admin/answer-cache/", {"clinic": globex.schema_name})
    assert reset.status_code == 302
    assert set(api.answer_stats()["clinics"]) == {acme.schema_name}
    with schema_context("public"):
        assert LogEntry.objects.filter(object_id=globex.schema_name).exists()
    # Clinic staff never reach it: the platform admin sends them to its sign-in.
    assert Client(HTTP_HOST="localhost").get("/admin/answer-cache/").status_code == 302
    assert Client(HTTP_HOST="localhost").post("/admin/answer-cache/").status_code == 302
    assert set(api.answer_stats()["clinics"]) == {acme.schema_name}

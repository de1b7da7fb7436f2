"""The shared cache of public answers (practitioner search, availability): served while the
clinic's data version holds, recomputed once a write it depends on commits, never crossing
clinics, never serving staff the public answer."""

import time
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone

from clinic.api import ANSWERS_VERSION_KEY
from scheduling.services import appointment_book
from scheduling.tests import factories as f
from tests.fixtures import ClinicClient, in_clinic

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
    answers, acme, cardiologist, django_assert_num_queries, django_capture_on_commit_callbacks
):
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

    # One instant for both reads: an answer is shared for the minute at most, and the run's
    # clock (23:59 on New Year's Eve, say) may cross a minute between them.
    with time_machine.travel(timezone.now(), tick=False):
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

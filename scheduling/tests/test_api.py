import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from scheduling.models import Appointment, AppointmentSeries, CalendarFeed
from scheduling.tests import factories as f
from tests.fixtures import ClinicClient, in_clinic


@pytest.fixture
def world(acme, make_user, client_for):
    desk = make_user(acme, "front_desk")
    pat_user = make_user(acme, "patient")
    other_user = make_user(acme, "patient")
    prac_user = make_user(acme, "practitioner")
    with in_clinic(acme):
        s = f.specialty("behavior-analysis")
        p = f.practitioner(specialties=(s,), user=prac_user)
        q = f.practitioner(specialties=(s,))
        t = f.appointment_type(p, q, minutes=60)
        me = f.patient(user=pat_user)
        other = f.patient(user=other_user)
    day = f.next_weekday(1)
    users = {"desk": desk, "patient": pat_user, "other": other_user, "prac": prac_user}
    return {
        "users": users,
        "desk": client_for(acme, desk),
        "patient": client_for(acme, pat_user),
        "other": client_for(acme, other_user),
        "prac": client_for(acme, prac_user),
        "anon": ClinicClient(acme),
        "p": p, "q": q, "t": t, "me": me, "other_patient": other, "day": day, "acme": acme,
    }  # fmt: skip


def _reauth(world, name: str) -> None:
    """A fresh token at the (travelled) current time: access tokens live 15 minutes."""
    world[name].authenticate(world["users"][name])


def _at(world, hour, minute=0):
    return f.local(world["day"], hour, minute).isoformat()


def _book(world, client="desk", hour=10, **extra):
    body = {
        "practitioner": world["p"].pk,
        "appointment_type": world["t"].pk,
        "start": _at(world, hour),
        **extra,
    }
    if client == "desk":
        body.setdefault("patient", world["me"].pk)
    headers = {}
    if "key" in body:
        headers["HTTP_IDEMPOTENCY_KEY"] = body.pop("key")
    return world[client].post("/api/v1/appointments/", body, "application/json", **headers)


def test_availability_for_a_specialty_in_the_requested_zone(world):
    day = world["day"].isoformat()
    response = world["anon"].get(
        "/api/v1/availability/",
        {"specialty": "behavior-analysis", "appointment_type": world["t"].pk, "start": day,
         "end": day, "tz": "Europe/Dublin"},
    )  # fmt: skip
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["timezone"] == "Europe/Dublin"
    assert {p["id"] for p in body["practitioners"]} == {world["p"].pk, world["q"].pk}
    first = datetime.fromisoformat(body["practitioners"][0]["slots"][0]["start"])
    assert first == f.local(world["day"], 9)  # 09:00 in New York ...
    dublin = first.astimezone(ZoneInfo("Europe/Dublin"))
    assert first.utcoffset() == dublin.utcoffset()  # ... written in Dublin's offset


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"appointment_type": 1, "start": "2027-01-01", "end": "2027-01-02"}, "practitioner"),
        ({"specialty": "x", "appointment_type": 1, "start": "soon", "end": "2027-01-02"}, "start"),
        ({"specialty": "x", "appointment_type": 1, "start": "2027-01-05",
          "end": "2027-01-01"}, "end"),
        ({"specialty": "x", "appointment_type": 1, "start": "2027-01-01",
          "end": "2027-12-01"}, "end"),
        ({"specialty": "x", "appointment_type": 1, "start": "2027-01-01", "end": "2027-01-02",
          "tz": "Mars/Base"}, "tz"),
        ({"specialty": "x", "appointment_type": 1, "start": "2027-01-01", "end": "2027-01-02",
          "tz": "Europe/" + "x" * 300}, "tz"),
        ({"specialty": "x", "appointment_type": 1, "start": "9999-12-31",
          "end": "9999-12-31"}, "start"),
        ({"specialty": "x", "appointment_type": 1, "start": "2027-01-01",
          "end": "9999-12-31T10:00:00Z"}, "end"),
        ({"specialty": "x", "appointment_type": 1, "start": "0001-01-01",
          "end": "0001-01-02"}, "start"),
        ({"specialty": "x", "appointment_type": 999999, "start": "2027-01-01",
          "end": "2027-01-02"}, "appointment_type"),
    ],
)  # fmt: skip
def test_availability_bad_input_is_a_400_naming_the_field(world, params, field):
    response = world["anon"].get("/api/v1/availability/", params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert field in response.json()["errors"]


def test_staff_books_for_a_patient_and_patient_books_for_self(world):
    staff = _book(world)
    assert staff.status_code == 201, staff.json()
    assert staff.json()["status"] == "booked" and staff.json()["source"] == "api"
    own = _book(world, client="patient", hour=13)
    assert own.status_code == 201
    assert own.json()["patient"]["id"] == world["me"].pk


def test_a_failed_notice_after_commit_never_turns_a_booking_into_a_500(
    world, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    """The booking is committed before its events are published; if Redis is unreachable
    then, the answer is still the 201 (a 500 would invite a second booking) and the error is
    logged."""
    from scheduling import services

    def unreachable(*args, **kwargs):
        raise ConnectionError("channel layer unreachable")

    monkeypatch.setattr(services, "publish", unreachable)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = _book(world)
    assert response.status_code == 201, response.json()
    assert callbacks, "the notice runs on commit"
    assert "channel layer unreachable" in caplog.text
    with in_clinic(world["acme"]):
        assert Appointment.objects.filter(pk=response.json()["id"], status="booked").exists()


def test_patient_cannot_book_for_someone_else(world):
    response = _book(world, client="patient", patient=world["other_patient"].pk)
    assert response.status_code == 403
    assert response.json()["code"] == "permission-denied"
    with in_clinic(world["acme"]):
        assert Appointment.objects.count() == 0


def test_taken_slot_is_a_409_with_ids_times_and_alternatives_only(world):
    assert _book(world).status_code == 201
    response = _book(world, client="other", hour=10)
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "slot-unavailable"
    [conflict] = body["conflicting_appointments"]
    assert set(conflict) == {"id", "start", "end"}  # never another patient's details
    assert len(body["suggested_alternatives"]) >= 3
    assert "Patient" not in str(body)


def test_refused_booking_is_a_422_naming_the_field(world):
    response = _book(world, hour=22)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "outside-working-hours" and "start" in body["errors"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("practitioner", 999999), ("appointment_type", 999999), ("patient", 999999),
     ("location", 999999), ("practitioner", 0), ("patient", 2**63)],
)  # fmt: skip
def test_unknown_ids_are_a_400_naming_each_field(world, field, value):
    response = _book(world, **{field: value})
    assert response.status_code == 400, response.json()
    assert response["Content-Type"] == "application/problem+json"
    assert list(response.json()["errors"]) == [field]
    with in_clinic(world["acme"]):
        assert Appointment.objects.count() == 0


def test_two_unknown_ids_are_both_named(world):
    response = _book(world, practitioner=999998, appointment_type=999999)
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"practitioner", "appointment_type"}
    assert "999998" in str(response.json()["errors"]["practitioner"])


def test_booking_reads_its_parties_and_rules_in_few_queries(world, django_assert_max_num_queries):
    # search path, user, patient+practitioner+type, rules+lock, insert, event, the patient's
    # notice and reminders (one statement: notifications.planning), the clinic's webhook
    # subscriptions to the event (one indexed read; none here, so no delivery is written), then
    # on commit nothing more (the next-available row came with the rules); the test transaction
    # wraps it. After the response, the audit event: SET LOCAL synchronous_commit and one INSERT
    # (here between a SAVEPOINT and its RELEASE).
    assert _book(world, hour=9).status_code == 201
    with django_assert_max_num_queries(11 + 4):
        assert _book(world, hour=11).status_code == 201


def test_serializer_fields_are_built_once_but_never_shared(world):
    """The cached ModelSerializer fields are copied for each serializer: patient and staff
    answers in the same process still differ (notes hidden from the patient only)."""
    staff = _book(world, notes="staff only").json()
    assert staff["notes"] == "staff only"
    mine = world["patient"].get(f"/api/v1/appointments/{staff['id']}/").json()
    assert "notes" not in mine and mine["patient"]["id"] == world["me"].pk
    again = world["desk"].get(f"/api/v1/appointments/{staff['id']}/").json()
    assert again["notes"] == "staff only"


def test_idempotency_key_replays_the_first_result(world):
    first = _book(world, key="retry-1")
    again = _book(world, key="retry-1")
    assert first.status_code == 201 and again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    with in_clinic(world["acme"]):
        assert Appointment.objects.count() == 1


def test_conflict_check_does_not_book(world):
    booked = _book(world).json()
    body = {"practitioner": world["p"].pk, "start": _at(world, 10, 30),
            "appointment_type": world["t"].pk}  # fmt: skip
    response = world["desk"].post("/api/v1/appointments/check/", body, "application/json")
    assert response.status_code == 200
    result = response.json()
    assert result["has_conflict"] is True
    assert result["conflicting_appointments"][0]["id"] == booked["id"]
    assert len(result["suggested_alternatives"]) >= 3
    body["start"] = _at(world, 15)
    free = world["desk"].post("/api/v1/appointments/check/", body, "application/json").json()
    assert free == {"has_conflict": False, "conflicting_appointments": [],
                    "suggested_alternatives": []}  # fmt: skip
    with in_clinic(world["acme"]):
        assert Appointment.objects.count() == 1


def test_lifecycle_actions_through_the_api(world):
    a = _book(world).json()
    url = f"/api/v1/appointments/{a['id']}/"
    moved = world["desk"].post(url + "reschedule/", {"start": _at(world, 14)}, "application/json")
    assert moved.status_code == 200 and moved.json()["reschedule_count"] == 1
    assert world["desk"].post(url + "complete/").status_code == 409  # not started
    with time_machine.travel(f.local(world["day"], 14, 5)):
        _reauth(world, "desk")
        _reauth(world, "prac")
        assert world["prac"].post(url + "check-in/").status_code == 403  # the desk's
        assert world["desk"].post(url + "check-in/").json()["status"] == "checked_in"
        assert world["prac"].post(url + "complete/").json()["status"] == "completed"
    _reauth(world, "desk")
    assert world["desk"].post(url + "cancel/", {}, "application/json").status_code == 409


def test_patient_cancels_own_but_not_inside_the_late_window(world):
    a = _book(world, client="patient").json()
    url = f"/api/v1/appointments/{a['id']}/cancel/"
    assert world["other"].post(url, {}, "application/json").status_code == 404
    start = f.local(world["day"], 10)
    with time_machine.travel(start - timedelta(hours=2)):
        _reauth(world, "patient")
        late = world["patient"].post(url, {"reason": "ill"}, "application/json")
    assert late.status_code == 409 and late.json()["code"] == "late-cancel-window"
    _reauth(world, "patient")
    ok = world["patient"].post(url, {"reason": "ill"}, "application/json")
    assert ok.status_code == 200 and ok.json()["status"] == "cancelled"
    assert "notes" not in ok.json()


def test_patients_cannot_check_in_or_complete(world):
    a = _book(world, client="patient").json()
    response = world["patient"].post(f"/api/v1/appointments/{a['id']}/check-in/")
    assert response.status_code == 403


def test_lists_filter_and_patients_see_only_their_own(world):
    mine = _book(world, client="patient").json()
    theirs = _book(world, client="other", hour=13).json()
    assert {a["id"] for a in world["patient"].get("/api/v1/appointments/").json()["results"]} == {
        mine["id"]
    }
    assert world["patient"].get(f"/api/v1/appointments/{theirs['id']}/").status_code == 404
    staff = world["desk"].get("/api/v1/appointments/", {"patient": world["me"].pk}).json()
    assert [a["id"] for a in staff["results"]] == [mine["id"]]
    me = world["patient"].get("/api/v1/me/appointments/").json()
    assert [a["id"] for a in me["results"]] == [mine["id"]]
    by_patient = world["desk"].get(f"/api/v1/patients/{world['other_patient'].pk}/appointments/")
    assert [a["id"] for a in by_patient.json()["results"]] == [theirs["id"]]
    refused = world["patient"].get(f"/api/v1/patients/{world['other_patient'].pk}/appointments/")
    assert refused.status_code == 403
    cancelled = world["desk"].get("/api/v1/appointments/", {"status": "cancelled"}).json()
    assert cancelled["results"] == [] and cancelled["next"] is None


def test_series_endpoint_all_or_nothing_then_partial(world):
    blocker = _book(world, hour=9).json()
    world["desk"].post(
        f"/api/v1/appointments/{blocker['id']}/reschedule/",
        {"start": (f.local(world["day"], 9) + timedelta(days=14)).isoformat()},
        "application/json",
    )
    body = {"patient": world["other_patient"].pk, "practitioner": world["p"].pk,
            "appointment_type": world["t"].pk, "start": _at(world, 9),
            "rrule": "FREQ=WEEKLY;COUNT=3"}  # fmt: skip
    refused = world["desk"].post("/api/v1/appointment-series/", body, "application/json")
    assert refused.status_code == 409 and refused.json()["code"] == "series-conflict"
    assert len(refused.json()["occurrences"]) == 1
    partial = world["desk"].post(
        "/api/v1/appointment-series/", {**body, "partial": True}, "application/json"
    )
    assert partial.status_code == 201
    assert len(partial.json()["booked"]) == 2 and len(partial.json()["skipped"]) == 1


def test_ics_download_and_practitioner_feed(world):
    a = _book(world, client="patient", telehealth=True).json()
    assert a["telehealth_url"].startswith("https://")
    ics = world["patient"].get(a["ics_url"])
    assert ics.status_code == 200 and ics["Content-Type"] == "text/calendar"
    text = ics.content.decode()
    assert "BEGIN:VEVENT" in text and "DTSTART:" in text and text.count("Z\r\n") >= 2
    feed = world["prac"].post("/api/v1/calendar-feeds/", {"practitioner": world["p"].pk},
                              "application/json")  # fmt: skip
    assert feed.status_code == 201
    path = feed.json()["url"].split("localhost", 1)[1]
    calendar = world["anon"].get(path)
    assert calendar.status_code == 200
    assert "BEGIN:VEVENT" in calendar.content.decode()
    assert world["me"].last_name not in calendar.content.decode()  # initials only
    refused = world["other"].post("/api/v1/calendar-feeds/", {"practitioner": world["p"].pk},
                                  "application/json")  # fmt: skip
    assert refused.status_code == 403
    with in_clinic(world["acme"]):
        assert CalendarFeed.objects.count() == 1


def test_another_clinic_cannot_see_book_or_change_these_appointments(world, globex, make_user,
                                                                      client_for):  # fmt: skip
    a = _book(world).json()
    g_desk = client_for(globex, make_user(globex, "front_desk"))
    assert g_desk.get(f"/api/v1/appointments/{a['id']}/").status_code == 404
    assert (
        g_desk.post(f"/api/v1/appointments/{a['id']}/cancel/", {}, "application/json").status_code
        == 404
    )
    assert g_desk.get("/api/v1/appointments/").json()["results"] == []
    booking = g_desk.post("/api/v1/appointments/", {
        "patient": world["me"].pk, "practitioner": world["p"].pk,
        "appointment_type": world["t"].pk, "start": _at(world, 15),
    }, "application/json")  # fmt: skip
    assert booking.status_code == 400
    check = g_desk.post("/api/v1/appointments/check/", {
        "practitioner": world["p"].pk, "start": _at(world, 10),
        "appointment_type": world["t"].pk}, "application/json")  # fmt: skip
    assert check.status_code == 400
    with in_clinic(world["acme"]):
        assert Appointment.objects.get(pk=a["id"]).status == "booked"


def test_availability_answer_is_what_the_serializer_would_write(world):
    """The view builds its (large) answer directly; it must equal AvailabilitySerializer's."""
    from django.utils import timezone as django_timezone

    from practice.models import ClinicSettings
    from scheduling.api.serializers import AvailabilitySerializer, _as_moment
    from scheduling.availability import availability

    day = world["day"]
    params = {"specialty": "behavior-analysis", "appointment_type": world["t"].pk,
              "start": day.isoformat(), "end": (day + timedelta(days=2)).isoformat(),
              "tz": "Europe/Dublin"}  # fmt: skip
    response = world["anon"].get("/api/v1/availability/", params)
    assert response.status_code == 200
    zone = ZoneInfo("Europe/Dublin")
    start = _as_moment(day, zone, end_of_day=False)
    end = _as_moment(day + timedelta(days=2), zone, end_of_day=True)
    with in_clinic(world["acme"]), django_timezone.override(zone):
        results = availability(
            appointment_type=world["t"], start=start, end=end, specialty="behavior-analysis"
        )
        expected = AvailabilitySerializer(
            {
                "appointment_type": world["t"].pk,
                "timezone": zone.key,
                "start": start,
                "end": end,
                "slot_step_minutes": ClinicSettings.load().slot_step_minutes,
                "practitioners": results,
            }  # fmt: skip
        ).data
    assert response.json() == json.loads(json.dumps(expected))
    assert sum(len(p["slots"]) for p in response.json()["practitioners"]) > 50


def test_availability_answers_are_reused_only_while_their_inputs_are_unchanged(world):
    """The API keeps rendered answers by everything they were computed from: a repeat is
    served from memory, but a booking or a change of hours shows at once."""
    from datetime import time

    from scheduling.api.availability import AVAILABILITY_ANSWERS
    from scheduling.models import WorkingHours

    AVAILABILITY_ANSWERS.clear()
    day = world["day"].isoformat()
    params = {"specialty": "behavior-analysis", "appointment_type": world["t"].pk,
              "start": day, "end": day, "tz": "America/New_York"}  # fmt: skip

    def slots(response) -> dict[int, list[str]]:
        assert response.status_code == 200
        return {
            p["id"]: [datetime.fromisoformat(s["start"]).strftime("%H:%M") for s in p["slots"]]
            for p in response.json()["practitioners"]
        }

    first = world["anon"].get("/api/v1/availability/", params)
    again = world["anon"].get("/api/v1/availability/", params)
    assert again.content == first.content and len(AVAILABILITY_ANSWERS._entries) == 1
    assert "10:00" in slots(first)[world["p"].pk]
    assert _book(world, hour=10).status_code == 201
    booked = slots(world["anon"].get("/api/v1/availability/", params))
    assert "10:00" not in booked[world["p"].pk] and "10:00" in booked[world["q"].pk]
    with in_clinic(world["acme"]):
        WorkingHours.objects.filter(practitioner=world["q"]).update(end_time=time(12))
    shorter = slots(world["anon"].get("/api/v1/availability/", params))
    assert max(shorter[world["q"].pk]) == "11:00"  # a 60-minute visit ends by 12:00
    assert len(AVAILABILITY_ANSWERS._entries) == 3


def test_availability_reads_its_type_with_its_inputs_and_sees_an_edit_at_once(world, settings):
    """The endpoint builds its inputs from the type as this process read it last and reads
    the type again in the same round trip: one statement per answer, and an edited or retired
    type is never answered as it was."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from scheduling.models import AppointmentType

    settings.ANSWER_CACHE_SECONDS_BY_KIND = {"availability": 0}  # every answer computed
    day = world["day"].isoformat()
    params = {"practitioner": world["p"].pk, "appointment_type": world["t"].pk,
              "start": day, "end": day, "tz": "America/New_York"}  # fmt: skip

    def starts() -> list[str]:
        response = world["anon"].get("/api/v1/availability/", params)
        assert response.status_code == 200, response.content
        (practitioner,) = response.json()["practitioners"]
        return [datetime.fromisoformat(s["start"]).strftime("%H:%M") for s in practitioner["slots"]]

    hourly = starts()
    with CaptureQueriesContext(connection) as queries:
        assert starts() == hourly
    statements = [q["sql"] for q in queries if not q["sql"].startswith("SET search_path")]
    assert len(statements) == 1 and "scheduling_appointmenttype" in statements[0]
    with in_clinic(world["acme"]):
        AppointmentType.objects.filter(pk=world["t"].pk).update(duration_minutes=30)
    assert len(starts()) > len(hourly)  # the half-hour visit fits more often, at once
    with in_clinic(world["acme"]):
        AppointmentType.objects.filter(pk=world["t"].pk).update(is_active=False)
    response = world["anon"].get("/api/v1/availability/", params)
    assert response.status_code == 400
    assert "appointment_type" in response.json()["errors"]


def test_answer_memo_stays_within_its_budget():
    from scheduling.api.availability import AnswerMemo

    memo = AnswerMemo(max_bytes=100, max_entries=3)
    for n in range(5):
        memo.put((n,), b"x" * 30)
    assert list(memo._entries) == [(2,), (3,), (4,)]
    memo.get((2,))
    memo.put((5,), b"y" * 50)  # 30 + 30 + 50 > 100: the least recently used go first
    assert list(memo._entries) == [(2,), (5,)] and memo._bytes == 80
    memo.put((6,), b"z" * 101)  # larger than the whole budget: not kept
    assert (6,) not in memo._entries


def test_a_zone_asked_for_by_one_request_does_not_leak_into_the_next(world):
    """`?tz=` is activated for its own request only (a WSGI thread serves many clients)."""
    assert _book(world, hour=10).status_code == 201
    tokyo = world["desk"].get("/api/v1/appointments/", {"tz": "Asia/Tokyo"}).json()
    assert tokyo["results"][0]["start"].endswith("+09:00")
    plain = world["desk"].get("/api/v1/appointments/").json()
    assert plain["results"][0]["start"].endswith("Z")
    day = world["day"].isoformat()
    params = {"specialty": "behavior-analysis", "start": day, "end": day,
              "appointment_type": world["t"].pk, "tz": "Asia/Tokyo"}  # fmt: skip
    world["anon"].get("/api/v1/availability/", params)
    assert world["desk"].get("/api/v1/appointments/").json()["results"][0]["start"].endswith("Z")


def test_the_smart_job_json_is_the_apis_byte_for_byte(world):
    """The job's JSON for the websocket (`job_payload`) is built without the API's serializer:
    it must stay what the API answers, to staff and to the patient (without the worker's
    fields), in every state and with another zone active."""
    from django.utils import timezone as django_timezone

    from clinic.api import JSONRenderer
    from scheduling.api.serializers import SmartBookingJobSerializer
    from scheduling.models import SmartBookingJob
    from scheduling.smart.job import job_payload

    now = datetime.now(ZoneInfo("UTC"))
    states = [
        {},
        {"status": "running", "started_at": now, "worker_id": "host:1", "retry_count": 1},
        {"status": "completed", "started_at": now, "completed_at": now + timedelta(seconds=1),
         "result": {"appointments": [{"id": 1, "start": now.isoformat()}]}, "reasons": ["Soon."]},
        {"status": "failed", "completed_at": now.replace(microsecond=0), "error_message": "None.",
         "nearest_options": [{"practitioner": world["p"].pk, "start": now.isoformat()}]},
    ]  # fmt: skip
    with in_clinic(world["acme"]):
        created = [
            SmartBookingJob.objects.create(patient=world["me"], request={"tz": "UTC"}, **state)
            for state in states
        ]
        jobs = [SmartBookingJob.objects.get(pk=job.pk) for job in created]
    for job in jobs:
        answer = world["desk"].get(f"/api/v1/smart-bookings/{job.pk}/")
        assert answer.status_code == 200
        assert answer.content == JSONRenderer().render(job_payload(job, staff=True))
        own = world["patient"].get(f"/api/v1/smart-bookings/{job.pk}/")
        assert own.status_code == 200
        assert own.content == JSONRenderer().render(job_payload(job, staff=False))
        assert "worker_id" not in own.json() and "retry_count" not in own.json()
        with django_timezone.override(ZoneInfo("America/New_York")):
            # no request in the context: read as a patient's
            assert job_payload(job, staff=False) == SmartBookingJobSerializer(job).data


FAR = ["9999-12-31T10:00:00Z", "0001-01-01T00:00:00Z", "2090-01-01T10:00:00Z"]


@pytest.mark.parametrize("start", FAR)
def test_a_visit_or_conflict_check_far_from_today_is_a_400_naming_start(world, start):
    booked = _book(world, start=start)
    assert booked.status_code == 400, booked.json()
    assert "start" in booked.json()["errors"]
    body = {"practitioner": world["p"].pk, "start": start, "appointment_type": world["t"].pk}
    check = world["desk"].post("/api/v1/appointments/check/", body, "application/json")
    assert check.status_code == 400 and "start" in check.json()["errors"]
    end = {"practitioner": world["p"].pk, "start": _at(world, 10), "end": start}
    check = world["desk"].post("/api/v1/appointments/check/", end, "application/json")
    assert check.status_code == 400 and "end" in check.json()["errors"]
    with in_clinic(world["acme"]):
        assert Appointment.objects.count() == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"start": "9999-12-31T10:00:00Z"}, "start"),
        ({"start": "0001-01-01T00:00:00Z"}, "start"),
        ({"timezone": "Europe/" + "x" * 300}, "timezone"),
        ({"timezone": "../../../etc/passwd"}, "timezone"),
    ],
)
def test_a_series_far_from_today_or_in_no_zone_is_a_400_naming_the_field(world, change, field):
    body = {"patient": world["other_patient"].pk, "practitioner": world["p"].pk,
            "appointment_type": world["t"].pk, "start": _at(world, 9),
            "rrule": "FREQ=WEEKLY;COUNT=3", **change}  # fmt: skip
    response = world["desk"].post("/api/v1/appointment-series/", body, "application/json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]
    with in_clinic(world["acme"]):
        assert Appointment.objects.count() == 0


@pytest.mark.parametrize(
    ("rule", "code"),
    [
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30;COUNT=5", "rrule-empty"),  # 30 February
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30;COUNT=5", "rrule-empty"),
        ("FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31;UNTIL=20301231T000000", "rrule-empty"),
        ("FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30;COUNT=5", "rrule-frequency"),
        ("FREQ=YEARLY;BYEASTER=0;COUNT=2", "rrule-frequency"),
        ("FREQ=YEARLY;COUNT=40", "rrule-too-far"),
        ("FREQ=YEARLY;INTERVAL=900;COUNT=2", "rrule-too-far"),
        ("FREQ=DAILY;COUNT=201", "rrule-too-long"),
        ("FREQ=WEEKLY;UNTIL=99991231T000000", "rrule-too-long"),
        ("FREQ=WEEKLY;COUNT=2;BYDAY=XX", "rrule-invalid"),
        ("FREQ=WEEKLY", "rrule-unbounded"),
    ],
)
def test_a_rule_with_no_bounded_series_is_a_400_naming_rrule(world, rule, code):
    """Issue 16: a patient's 30-February rule cost seconds of CPU (dateutil walked to the year
    9999 for a date); now every rule is expanded within a bounded walk (see
    test_series.py) and one with no date, too many or too far answers 400 on `rrule`."""
    body = {"practitioner": world["p"].pk, "appointment_type": world["t"].pk,
            "start": _at(world, 9), "rrule": rule}  # fmt: skip
    response = world["patient"].post("/api/v1/appointment-series/", body, "application/json")
    assert response.status_code == 400, response.json()
    problem = response.json()
    assert problem["type"].endswith(code) and list(problem["errors"]) == ["rrule"], problem
    with in_clinic(world["acme"]):
        assert not Appointment.objects.exists() and not AppointmentSeries.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start": "0001-01-01T00:00:00Z", "end": "0001-01-02T00:00:00Z"}, "start"),
        ({"start": "2027-01-01T00:00:00Z", "end": "9999-12-31T00:00:00Z"}, "end"),
    ],
)
def test_time_off_far_from_today_is_a_400_and_not_stored(world, acme, make_user, client_for,
                                                          body, field):  # fmt: skip
    from scheduling.models import TimeOff

    admin = client_for(acme, make_user(acme, "clinic_admin"))
    response = admin.post(
        "/api/v1/time-off/", {"practitioner": world["p"].pk, **body}, "application/json"
    )
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]
    with in_clinic(acme):
        assert not TimeOff.objects.exists()


def test_working_hours_effective_in_year_1_is_a_400_naming_the_field(world, acme, make_user,
                                                                     client_for):  # fmt: skip
    admin = client_for(acme, make_user(acme, "clinic_admin"))
    body = {"practitioner": world["p"].pk, "weekday": 1, "start_time": "09:00",
            "end_time": "12:00", "effective_from": "0001-01-01"}  # fmt: skip
    response = admin.post("/api/v1/working-hours/", body, "application/json")
    assert response.status_code == 400, response.json()
    assert "effective_from" in response.json()["errors"]

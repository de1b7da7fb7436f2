"""Smart booking: the algorithm (in-process), the API's validation, and the whole flow through a
real Celery worker and a real websocket (Channels' communicator on the real routing + Redis)."""

import json
import os
import signal
import time
from datetime import timedelta

import pytest
import time_machine
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from authorizations.models import UnitReservation
from authorizations.tests import factories as af
from clinic.asgi import application
from practice import formats
from scheduling import services
from scheduling.models import Appointment, SmartBookingJob
from scheduling.smart import scoring
from scheduling.smart.job import (
    clinics_with_stuck_jobs,
    smart_job_cancel,
    smart_job_run,
    smart_jobs_sweep,
)
from scheduling.tests import factories as f
from tests.fixtures import (
    ClinicClient,
    _wait_for_worker,
    in_clinic,
    refresh_token_for,
    run_async,
    start_worker,
    stop_worker,
)


def _request(t, day_from, days=14, **extra) -> dict:
    return {
        "specialty": "behavior-analysis",
        "appointment_type": t.pk,
        "earliest_date": day_from.isoformat(),
        "latest_date": (day_from + timedelta(days=days)).isoformat(),
        "tz": "America/New_York",
        **extra,
    }


@pytest.fixture
def clinic_world(acme):
    with in_clinic(acme):
        s = f.specialty("behavior-analysis")
        a = f.practitioner(specialties=(s,), name="Dr. Alpha")
        b = f.practitioner(specialties=(s,), name="Dr. Beta")
        t = f.appointment_type(a, b, minutes=60, notice=0)
        yield {"a": a, "b": b, "t": t, "patient": f.patient(), "day": f.next_weekday(0)}


def _run(world, **request) -> SmartBookingJob:
    job = SmartBookingJob.objects.create(
        patient=world["patient"], request=_request(world["t"], world["day"], **request)
    )
    smart_job_run(job.pk)
    job.refresh_from_db()
    return job


def test_books_the_soonest_slot_and_says_why(clinic_world):
    job = _run(clinic_world)
    assert job.status == "completed", job.error_message
    [booked] = job.result["appointments"]
    appointment = Appointment.objects.get(pk=booked["id"])
    assert appointment.source == "smart" and appointment.smart_job_id == job.pk
    assert appointment.start == f.local(clinic_world["day"], 9)
    assert job.reasons and "Booked with" in job.reasons[0]


def test_prefers_the_practitioner_the_patient_saw_before(clinic_world):
    w = clinic_world
    earlier = services.appointment_book(
        patient=w["patient"], practitioner=w["b"], appointment_type=w["t"],
        start=f.local(w["day"] - timedelta(days=3), 9),
    )  # fmt: skip
    with time_machine.travel(earlier.start + timedelta(minutes=5)):
        services.appointment_complete(appointment=earlier)
    job = _run(w)
    assert job.result["appointments"][0]["practitioner"] == w["b"].pk
    assert any("Continues care" in reason for reason in job.reasons)


def test_preferred_days_and_times_win_over_soonest(clinic_world):
    job = _run(clinic_world, preferred_weekdays=[3], preferred_times=["afternoon"])
    start = timezone.datetime.fromisoformat(job.result["appointments"][0]["start"])
    local = start.astimezone(f.local(clinic_world["day"], 9).tzinfo)
    assert local.weekday() == 3 and 12 <= local.hour < 17


def test_race_lost_to_a_direct_booking_falls_through_to_the_next_slot(clinic_world, monkeypatch):
    w = clinic_world
    need = scoring.Need.from_request(w["patient"], _request(w["t"], w["day"]))
    stale = scoring.score_slots(need, scoring.eligible_practitioners(need))  # before the race
    best = stale[0]
    winner = services.appointment_book(
        patient=f.patient(), practitioner=best.practitioner, appointment_type=w["t"],
        start=best.start,
    )  # fmt: skip
    monkeypatch.setattr("scheduling.smart.job.score_slots", lambda need, practitioners: stale)
    job = _run(w)
    booked = job.result["appointments"][0]
    assert job.status == "completed"
    assert (booked["practitioner"], booked["start"]) != (
        winner.practitioner_id,
        winner.start.isoformat(),
    )
    assert booked["start"] == stale[1].start.isoformat()


def test_nothing_found_fails_with_a_plain_message_and_nearest_options(clinic_world):
    w = clinic_world
    job = _run(w, language="ja")
    assert job.status == "failed"
    assert "No practitioner matches" in job.error_message
    assert len(job.nearest_options) >= 3


def test_recurring_books_the_whole_set_within_the_authorization(clinic_world):
    w = clinic_world
    code = f.service_code("97153", 15)
    w["t"].service_code = code
    w["t"].save()
    _, line = af.authorization(w["patient"], code, units=4 * 6)  # six 1-hour visits
    job = _run(w, days=20, recurring={"sessions_per_week": 3, "weeks": 2})
    assert job.status == "completed", job.error_message
    assert len(job.result["appointments"]) == 6
    line.refresh_from_db()
    assert line.units_scheduled == 24
    practitioners = {a["practitioner"] for a in job.result["appointments"]}
    assert len(practitioners) == 1


def test_recurring_beyond_the_authorization_fails_cleanly(clinic_world):
    w = clinic_world
    code = f.service_code("97153", 15)
    w["t"].service_code = code
    w["t"].save()
    _, line = af.authorization(w["patient"], code, units=4 * 5)  # one visit short
    job = _run(w, days=20, recurring={"sessions_per_week": 3, "weeks": 2})
    assert job.status == "failed"
    assert "authorization" in job.error_message.lower()
    assert not Appointment.objects.filter(smart_job_id=job.pk).exists()
    line.refresh_from_db()
    assert line.units_scheduled == 0


def test_a_rerun_of_a_finished_or_booked_job_never_books_twice(clinic_world):
    job = _run(clinic_world)
    assert smart_job_run(job.pk) == "skipped"
    SmartBookingJob.objects.filter(pk=job.pk).update(status="running")  # lost before marking
    assert smart_job_run(job.pk) == "completed"
    assert Appointment.objects.filter(smart_job_id=job.pk).count() == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"latest_date": "2020-01-10", "earliest_date": "2020-01-01"}, "latest_date"),
        ({"specialty": "astrology"}, "specialty"),
        ({"specialty": None, "practitioner": "other"}, "appointment_type"),
        ({"specialty": None}, "specialty"),
        ({"language": "xx"}, "language"),
        ({"tz": "Europe/" + "x" * 300}, "tz"),
        ({"tz": "../../etc/passwd"}, "tz"),
        ({"earliest_date": "9999-12-01", "latest_date": "9999-12-31"}, "earliest_date"),
        ({"latest_date": "9999-12-31"}, "latest_date"),
    ],
)
def test_bad_requests_are_400s_before_any_job(clinic_world, acme, make_user, client_for,
                                              change, field):  # fmt: skip
    w = clinic_world
    desk = client_for(acme, make_user(acme, "front_desk"))
    body = {**_request(w["t"], w["day"]), "patient": w["patient"].pk, **change}
    if body.get("practitioner") == "other":
        with in_clinic(acme):
            body["practitioner"] = f.practitioner().pk
    body = {k: v for k, v in body.items() if v is not None}
    response = desk.post("/api/v1/smart-bookings/", body, "application/json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]
    with in_clinic(acme):
        assert SmartBookingJob.objects.count() == 0


def test_an_inactive_patient_is_refused_by_the_job_service_and_the_api(
    clinic_world, acme, make_user, client_for
):
    from django.core.exceptions import ValidationError

    from scheduling.smart.job import smart_job_create

    w = clinic_world
    with in_clinic(acme):
        w["patient"].is_active = False
        w["patient"].save(update_fields=["is_active"])
        with pytest.raises(ValidationError) as refused:
            smart_job_create(patient=w["patient"], request=_request(w["t"], w["day"]))
        assert set(refused.value.message_dict) == {"patient"}
    desk = client_for(acme, make_user(acme, "front_desk"))
    body = {**_request(w["t"], w["day"]), "patient": w["patient"].pk}
    response = desk.post("/api/v1/smart-bookings/", body, "application/json")
    assert response.status_code == 400 and response.json()["code"] == "validation-error"
    assert response.json()["errors"] == {"patient": ["This patient record is inactive."]}
    with in_clinic(acme):
        assert SmartBookingJob.objects.count() == 0


# --- Through a real worker and a real websocket -------------------------------------------------


@pytest.fixture
def smart_queue(settings):
    """Smart-booking tasks on a queue of their own, so these tests choose their worker."""
    settings.SMART_BOOKING_QUEUE = f"{os.environ['CELERY_QUEUE']}-smart-{time.monotonic_ns()}"
    return settings.SMART_BOOKING_QUEUE


def _worker(queue: str, name: str, delay: float = 0.0):
    proc = start_worker(
        "--concurrency=1", "--pool=solo", name=name, queue=queue,
        env={"SMART_BOOKING_STEP_DELAY": str(delay)},
    )  # fmt: skip
    _wait_for_worker(name=name)
    return proc


@pytest.fixture
def live(committed, make_user):
    from tenants.models import Clinic

    acme = Clinic.objects.get(slug="acme")
    user = make_user(acme, "patient")
    with in_clinic(acme):
        s = f.specialty("behavior-analysis")
        p = f.practitioner(specialties=(s,))
        code = f.service_code("97153", 15)
        t = f.appointment_type(p, minutes=60, notice=0, code=code)
        patient = f.patient(user=user)
        af.authorization(patient, code, units=40)
    token = str(refresh_token_for(acme, user).access_token)
    client = ClinicClient(acme).authenticate(user)
    return {"acme": acme, "user": user, "token": token, "client": client, "t": t,
            "patient": patient, "day": f.next_weekday(1)}  # fmt: skip


async def _watch(job_id: str, *, host: str, token: str | None = None, timeout: float = 30):
    path = f"/ws/jobs/{job_id}/" + (f"?token={token}" if token else "")
    communicator = WebsocketCommunicator(
        application,
        path,
        headers=[(b"host", host.encode()), (b"origin", f"http://{host}:8000".encode())],
    )
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    seen = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            message = await communicator.receive_output(timeout=deadline - time.monotonic())
            if message["type"] == "websocket.close":
                return seen, message.get("code", 1000)
            seen.append(json.loads(message["text"]))
    except TimeoutError:
        pass  # the communicator has stopped the consumer already
    return seen, None


def _submit(live) -> dict:
    body = _request(live["t"], live["day"])
    response = live["client"].post("/api/v1/smart-bookings/", body, "application/json")
    assert response.status_code == 202, response.json()
    return response.json()


def test_end_to_end_through_a_worker_and_a_websocket(live, smart_queue):
    worker = _worker(smart_queue, "smart-e2e", delay=0.3)
    try:
        accepted = _submit(live)
        assert accepted["status"] == "queued"
        assert accepted["websocket_url"].startswith("ws://acme.localhost:")
        assert timezone.datetime.fromisoformat(
            accepted["estimated_completion"]
        ) > timezone.now() - timedelta(seconds=1)
        seen, code = run_async(
            _watch(accepted["job_id"], host="acme.localhost", token=live["token"])
        )
    finally:
        stop_worker(worker)
    statuses = [event["status"] for event in seen]
    assert statuses[-1] == "completed" and "running" in statuses, statuses
    assert code == 1000
    final = seen[-1]
    status_body = live["client"].get(f"/api/v1/smart-bookings/{accepted['job_id']}/").json()
    assert final == status_body  # the websocket sends the same JSON as the API
    assert not any({"worker_id", "retry_count"} & set(event) for event in seen)  # a patient
    with in_clinic(live["acme"]):
        [appointment] = Appointment.objects.filter(smart_job_id=accepted["job_id"])
        assert appointment.unit_reservation.state == "reserved"
        assert final["result"]["appointments"][0]["id"] == appointment.pk


def test_websocket_refuses_strangers_other_patients_and_other_clinics(live, make_user):
    from tenants.models import Clinic

    with in_clinic(live["acme"]):
        job = SmartBookingJob.objects.create(patient=live["patient"], request={})
    other = make_user(live["acme"], "patient")
    other_token = str(refresh_token_for(live["acme"], other).access_token)
    globex = Clinic.objects.get(slug="globex")
    g_user = make_user(globex, "front_desk")
    g_token = str(refresh_token_for(globex, g_user).access_token)

    def closed_with(host, token):
        seen, code = run_async(_watch(str(job.pk), host=host, token=token, timeout=5))
        return code, seen

    assert closed_with("acme.localhost", None) == (4401, [])
    assert closed_with("acme.localhost", other_token) == (4403, [])
    assert closed_with("globex.localhost", g_token) == (4404, [])
    assert closed_with("globex.localhost", live["token"])[0] == 4401  # acme's token abroad
    seen, code = run_async(
        _watch(str(job.pk), host="acme.localhost", token=live["token"], timeout=3)
    )
    assert code is None and [event["status"] for event in seen] == ["queued"]


def test_the_socket_shows_the_worker_fields_to_staff_only(live, make_user):
    """The job's socket sends a patient what the API shows them (no worker host or restart
    count), on connect and on every change, and staff what the API shows staff."""
    desk = make_user(live["acme"], "front_desk")
    desk_token = str(refresh_token_for(live["acme"], desk).access_token)
    with in_clinic(live["acme"]):
        job = SmartBookingJob.objects.create(
            patient=live["patient"], request={}, worker_id="worker-7:4242", retry_count=2
        )

    def cancel() -> None:
        with in_clinic(live["acme"]):
            assert smart_job_cancel(job=job)

    async def watch(token: str) -> WebsocketCommunicator:
        communicator = WebsocketCommunicator(
            application,
            f"/ws/jobs/{job.pk}/?token={token}",
            headers=[(b"host", b"acme.localhost")],
        )
        connected, _ = await communicator.connect(timeout=10)
        assert connected
        return communicator

    async def both() -> dict[str, list[dict]]:
        sockets = {"patient": await watch(live["token"]), "staff": await watch(desk_token)}
        seen = {who: [await s.receive_json_from(timeout=10)] for who, s in sockets.items()}
        await sync_to_async(cancel)()
        for who, socket in sockets.items():
            seen[who].append(await socket.receive_json_from(timeout=10))
            await socket.disconnect()
        return seen

    seen = run_async(both())
    assert [event["status"] for event in seen["patient"]] == ["queued", "cancelled"]
    assert [event["status"] for event in seen["staff"]] == ["queued", "cancelled"]
    for event in seen["patient"]:
        assert "worker_id" not in event and "retry_count" not in event
        assert "worker-7" not in json.dumps(event)
    for event in seen["staff"]:
        assert (event["worker_id"], event["retry_count"]) == ("worker-7:4242", 2)
    url = f"/api/v1/smart-bookings/{job.pk}/"
    staff_client = ClinicClient(live["acme"]).authenticate(desk)
    assert seen["patient"][-1] == live["client"].get(url).json()
    assert seen["staff"][-1] == staff_client.get(url).json()


def test_sigkill_mid_job_then_a_new_worker_completes_it_exactly_once(live, smart_queue):
    first = _worker(smart_queue, "doomed", delay=3.0)
    accepted = _submit(live)
    job_id = accepted["job_id"]
    with in_clinic(live["acme"]):
        deadline = time.monotonic() + 20
        while SmartBookingJob.objects.get(pk=job_id).status != "running":
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    second = _worker(smart_queue, "rescuer")
    try:
        with in_clinic(live["acme"]):
            assert SmartBookingJob.objects.get(pk=job_id).status == "running"
            requeued = smart_jobs_sweep(queued_after=timedelta(0), running_after=timedelta(0))
            assert requeued == [job_id]
            deadline = time.monotonic() + 30
            while not SmartBookingJob.objects.get(pk=job_id).is_final:
                assert time.monotonic() < deadline, "the job never finished"
                time.sleep(0.1)
            smart_jobs_sweep(queued_after=timedelta(0), running_after=timedelta(0))
            time.sleep(1)  # a duplicate delivery would have booked by now
            job = SmartBookingJob.objects.get(pk=job_id)
            assert job.status == "completed" and job.retry_count >= 1
            assert Appointment.objects.filter(smart_job_id=job_id).count() == 1
            assert UnitReservation.objects.filter(state="reserved").count() == 1
    finally:
        stop_worker(second)


def test_sweep_requeues_a_job_stuck_in_queued(live, smart_queue):
    with in_clinic(live["acme"]):
        job = SmartBookingJob.objects.create(
            patient=live["patient"], request=_request(live["t"], live["day"])
        )
        SmartBookingJob.objects.filter(pk=job.pk).update(
            created_at=timezone.now() - timedelta(minutes=10)
        )
    worker = _worker(smart_queue, "sweeper")
    try:
        with in_clinic(live["acme"]):
            fresh = SmartBookingJob.objects.create(
                patient=live["patient"], request=_request(live["t"], live["day"])
            )
            ids = smart_jobs_sweep(
                queued_after=timedelta(minutes=5), running_after=timedelta(minutes=5)
            )
            assert ids == [str(job.pk)]  # the fresh one is left alone
            deadline = time.monotonic() + 30
            while SmartBookingJob.objects.get(pk=job.pk).status != "completed":
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert SmartBookingJob.objects.get(pk=fresh.pk).status == "queued"
    finally:
        stop_worker(worker)


def test_one_query_finds_the_clinics_with_stuck_jobs(clinic_world, acme, globex):
    """The beat sweep visits only clinics holding a job stuck in queued or running; a fresh job,
    a finished one, a clinic without jobs and a schema not migrated yet are all passed over."""
    long_ago = timezone.now() - timedelta(minutes=10)
    with in_clinic(acme):
        stuck = SmartBookingJob.objects.create(
            patient=clinic_world["patient"],
            request=_request(clinic_world["t"], clinic_world["day"]),
        )
        SmartBookingJob.objects.filter(pk=stuck.pk).update(created_at=long_ago)
    five = timedelta(minutes=5)
    schemas = [acme.schema_name, globex.schema_name, "no_such_schema"]

    def found_after(**change) -> list[str]:
        if change:
            with in_clinic(acme):
                SmartBookingJob.objects.filter(pk=stuck.pk).update(**change)
        return clinics_with_stuck_jobs(schemas, queued_after=five, running_after=five)

    assert found_after() == [acme.schema_name]  # queued for ten minutes
    assert found_after(status="running", started_at=timezone.now()) == []
    assert found_after(started_at=long_ago) == [acme.schema_name]
    assert found_after(status="completed", completed_at=timezone.now()) == []


def test_cancel_while_queued_then_409(live):
    with in_clinic(live["acme"]):
        job = SmartBookingJob.objects.create(patient=live["patient"], request={})
    url = f"/api/v1/smart-bookings/{job.pk}/cancel/"
    assert live["client"].post(url).json()["status"] == "cancelled"
    assert live["client"].post(url).status_code == 409


def test_an_exhausted_authorization_fails_with_a_reason_not_a_crash(clinic_world):
    w = clinic_world
    code = f.service_code("97153", 15)
    code.requires_authorization = True
    code.save()
    w["t"].service_code = code
    w["t"].save()
    af.authorization(w["patient"], code, units=3)  # a one-hour visit needs 4
    job = _run(w)
    assert job.status == "failed"
    assert "has 3 unit(s) left and one" in job.error_message and "needs 4" in job.error_message
    assert not Appointment.objects.filter(smart_job_id=job.pk).exists()


def _reference_scores(need, practitioners) -> list[tuple]:
    """score_slots as first written (every reason built eagerly): the reference that the
    faster scoring must match, order, scores and reasons."""
    from scheduling.availability import availability

    results = availability(
        appointment_type=need.appointment_type, start=need.earliest, end=need.latest,
        practitioner_ids=[p.pk for p in practitioners], location_id=need.location_id,
        telehealth=need.telehealth,
    )  # fmt: skip
    seen = scoring._seen_practitioners(need.patient)
    span = max((need.latest - need.earliest).total_seconds(), 1)
    units_left = scoring._units_left_by_day(need)
    out = []
    for result in results:
        p = result.practitioner
        for slot in result.slots:
            score, reasons = 0.0, []
            local = slot.start.astimezone(need.tz)
            if p.pk in seen:
                score += 40
                reasons.append(f"Continues care with {p.display_name} ({seen[p.pk]} earlier visit(s)).")  # fmt: skip # noqa: E501
            soon = 1 - (slot.start - need.earliest).total_seconds() / span
            score += 30 * max(soon, 0)
            if need.weekdays and local.weekday() in need.weekdays:
                score += 15
                reasons.append(f"On a preferred day ({local:%A}).")
            hour = local.hour
            if need.times_of_day and any(
                scoring.TIMES_OF_DAY[n][0] <= hour < scoring.TIMES_OF_DAY[n][1]
                for n in need.times_of_day
            ):
                score += 15
                clock = formats.message_time(local, zone=local.tzinfo)
                reasons.append(f"At a preferred time of day ({clock}).")
            rating = float(p.rating_average or 0)
            score += 2 * rating
            if rating >= 4.5:
                reasons.append(f"{p.display_name} is rated {rating:.1f}/5.")
            if units_left is not None:
                left = units_left(local.date())
                if left is None:
                    score -= 100
                else:
                    score += min(10, left / 4)
                    reasons.append(f"Covered by your authorization ({left} units left).")
            out.append((p.pk, slot.start, score, reasons))
    out.sort(key=lambda c: (-c[2], c[1], c[0]))
    return out


def test_scoring_matches_the_reference_order_scores_and_reasons(clinic_world):
    """Scores are summed eagerly and reasons written lazily; the outcome must not change."""
    w = clinic_world
    w["a"].rating_average = 4.8
    w["a"].save()
    earlier = services.appointment_book(
        patient=w["patient"], practitioner=w["b"], appointment_type=w["t"],
        start=f.local(w["day"] - timedelta(days=3), 9),
    )  # fmt: skip
    with time_machine.travel(earlier.start + timedelta(minutes=5)):
        services.appointment_complete(appointment=earlier)
    code = f.service_code("97153", 15)
    w["t"].service_code = code
    w["t"].save()
    af.authorization(w["patient"], code, units=40)
    for extra in ({}, {"preferred_weekdays": [1, 3], "preferred_times": ["morning", "evening"]}):
        need = scoring.Need.from_request(w["patient"], _request(w["t"], w["day"], **extra))
        practitioners = scoring.eligible_practitioners(need)
        got = [
            (c.practitioner.pk, c.start, c.score, c.reasons)
            for c in scoring.score_slots(need, practitioners)
        ]
        assert got == _reference_scores(need, practitioners)
        assert len(got) > 100 and any(len(reasons) >= 2 + bool(extra) for *_, reasons in got)


def test_a_stored_job_whose_window_can_never_be_booked_ends_failed(clinic_world):
    w = clinic_world
    # Year 9999 can no longer be stored (smart_job_*_stored_range); 2199 can, and is as far
    # from any bookable day.
    request = {**_request(w["t"], w["day"]), "earliest_date": "2199-12-01",
               "latest_date": "2199-12-31"}  # fmt: skip
    job = SmartBookingJob.objects.create(patient=w["patient"], request=request)
    assert smart_job_run(job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == "failed" and "too far from today" in job.error_message
    assert job.nearest_options == []
    assert smart_jobs_sweep(queued_after=timedelta(0), running_after=timedelta(0)) == []


def test_a_job_started_max_runs_times_ends_failed_instead_of_running_again(clinic_world):
    from scheduling.smart.job import MAX_RUNS

    w = clinic_world
    job = SmartBookingJob.objects.create(patient=w["patient"], request=_request(w["t"], w["day"]))
    SmartBookingJob.objects.filter(pk=job.pk).update(status="running", retry_count=MAX_RUNS - 1)
    assert smart_job_run(job.pk) == "skipped"
    job.refresh_from_db()
    assert job.status == "failed" and f"after {MAX_RUNS} attempts" in job.error_message
    assert not Appointment.objects.filter(smart_job_id=job.pk).exists()
    assert smart_jobs_sweep(queued_after=timedelta(0), running_after=timedelta(0)) == []

"""Clinic closures and holidays (issue 18): clinic-wide or one location's days that
availability, the booking rules, the board, smart booking and series leave out, kept through
`/api/v1/closures/` and the admin under the grants."""

from datetime import timedelta

import pytest

from scheduling import availability, series, services
from scheduling.errors import BookingRefusedError, SeriesConflictError
from scheduling.models import Appointment, Closure, SmartBookingJob
from scheduling.smart.job import smart_job_run
from scheduling.tests import factories as f
from tests.fixtures import in_clinic


@pytest.fixture
def setup(acme):
    with in_clinic(acme):
        s = f.specialty("behavior-analysis")
        north, south = f.location("North"), f.location("South")
        a = f.practitioner(specialties=(s,), at=north, name="Dr. North")
        b = f.practitioner(specialties=(s,), at=south, name="Dr. South")
        t = f.appointment_type(a, b, minutes=60)
        monday = f.next_weekday(0)
        yield {"a": a, "b": b, "t": t, "north": north, "south": south, "monday": monday,
               "patient": f.patient()}  # fmt: skip


def _days(setup, practitioner, first, days=3) -> set:
    results = availability.availability(
        appointment_type=setup["t"],
        start=f.local(first, 0),
        end=f.local(first + timedelta(days=days), 0),
        practitioner_ids=[practitioner.pk],
    )
    return {slot.start.astimezone(f.local(first, 0).tzinfo).date() for r in results
            for slot in r.slots}  # fmt: skip


def test_a_holiday_removes_its_day_from_availability(setup):
    monday, tuesday = setup["monday"], setup["monday"] + timedelta(days=1)
    assert tuesday in _days(setup, setup["a"], monday)
    Closure.objects.create(name="Founders' day", start_date=tuesday, end_date=tuesday)
    for practitioner in (setup["a"], setup["b"]):
        days = _days(setup, practitioner, monday)
        assert tuesday not in days and {monday, tuesday + timedelta(days=1)} <= days


def test_a_locations_closure_closes_that_location_only(setup):
    monday = setup["monday"]
    Closure.objects.create(
        name="Flood", start_date=monday, end_date=monday + timedelta(days=1),
        location=setup["north"],
    )  # fmt: skip
    assert monday not in _days(setup, setup["a"], monday)
    assert monday in _days(setup, setup["b"], monday)


def test_booking_on_a_closed_day_is_refused_naming_start_even_overbooked(setup, make_user, acme):
    monday = setup["monday"]
    Closure.objects.create(name="Founders' day", start_date=monday, end_date=monday)
    desk = make_user(acme, "front_desk")
    for overbook in (False, True):
        with pytest.raises(BookingRefusedError) as refused:
            services.appointment_book(
                patient=setup["patient"], practitioner=setup["a"], appointment_type=setup["t"],
                start=f.local(monday, 10), booked_by=desk, overbook=overbook,
            )  # fmt: skip
        assert refused.value.code == "clinic-closed"
        assert "start" in refused.value.extra["errors"]
        assert "Founders' day" in refused.value.detail
    assert Appointment.objects.count() == 0
    # moving a visit onto the closed day is refused the same way
    visit = services.appointment_book(
        patient=setup["patient"], practitioner=setup["a"], appointment_type=setup["t"],
        start=f.local(monday + timedelta(days=1), 10), booked_by=desk,
    )  # fmt: skip
    with pytest.raises(BookingRefusedError) as refused:
        services.appointment_reschedule(appointment=visit, start=f.local(monday, 11), by=desk)
    assert refused.value.code == "clinic-closed"


def test_a_series_skips_and_reports_the_closed_dates(setup):
    monday = setup["monday"]
    holiday = monday + timedelta(days=7)
    Closure.objects.create(name="Founders' day", start_date=holiday, end_date=holiday)
    kwargs = {
        "patient": setup["patient"], "practitioner": setup["a"], "appointment_type": setup["t"],
        "first_start": f.local(monday, 10), "rrule": "FREQ=WEEKLY;COUNT=3",
    }  # fmt: skip
    with pytest.raises(SeriesConflictError) as refused:
        series.appointment_series_book(**kwargs)
    [closed] = refused.value.extra["occurrences"]
    assert closed["code"] == "clinic-closed" and closed["start"].startswith(holiday.isoformat())
    assert Appointment.objects.count() == 0
    result = series.appointment_series_book(**kwargs, partial=True)
    assert [a.start.date() for a in result.booked] == [monday, monday + timedelta(days=14)]
    assert [s["code"] for s in result.skipped] == ["clinic-closed"]


def test_smart_booking_passes_over_a_closed_day(setup):
    monday = setup["monday"]
    Closure.objects.create(name="Founders' day", start_date=monday, end_date=monday)
    job = SmartBookingJob.objects.create(
        patient=setup["patient"],
        request={
            "specialty": "behavior-analysis",
            "appointment_type": setup["t"].pk,
            "earliest_date": monday.isoformat(),
            "latest_date": (monday + timedelta(days=7)).isoformat(),
            "tz": "America/New_York",
        },
    )
    smart_job_run(job.pk)
    job.refresh_from_db()
    assert job.status == "completed", job.error_message
    booked = Appointment.objects.get(pk=job.result["appointments"][0]["id"])
    assert booked.start == f.local(monday + timedelta(days=1), 9)


# --- The API and the admin -----------------------------------------------------------------


def test_the_front_desk_keeps_closures_and_anyone_reads_them(
    acme, globex, make_user, client_for, role_users
):
    desk = client_for(acme, role_users["front_desk"])
    made = desk.post(
        "/api/v1/closures/",
        {"name": "Christmas Day", "start_date": "2026-12-25", "end_date": "2026-12-25"},
        content_type="application/json",
    )
    assert made.status_code == 201, made.content
    backwards = desk.post(
        "/api/v1/closures/",
        {"name": "Oops", "start_date": "2026-12-26", "end_date": "2026-12-24"},
        content_type="application/json",
    )
    assert backwards.status_code == 400 and "end_date" in backwards.json()["errors"]
    biller = client_for(acme, role_users["biller"]).post(
        "/api/v1/closures/",
        {"name": "Nope", "start_date": "2026-12-27", "end_date": "2026-12-27"},
        content_type="application/json",
    )
    assert biller.status_code == 403
    listed = client_for(acme, role_users["patient"]).get("/api/v1/closures/")
    assert [c["name"] for c in listed.json()["results"]] == ["Christmas Day"]
    other = client_for(globex).get("/api/v1/closures/")
    assert other.status_code == 200 and other.json()["results"] == []  # acme's stays acme's
    with in_clinic(acme):
        assert Closure.objects.filter(name="Christmas Day").count() == 1


def test_the_admin_adds_a_location_closure(acme, admin_as, setup):
    page = admin_as("clinic_admin").post(
        "/admin/scheduling/closure/add/",
        {
            "name": "Snow day",
            "start_date": setup["monday"].isoformat(),
            "end_date": setup["monday"].isoformat(),
            "location": setup["north"].pk,
        },
    )
    assert page.status_code == 302, page.content[:2000]
    with in_clinic(acme):
        assert Closure.objects.get(name="Snow day").location_id == setup["north"].pk
    listing = admin_as("clinic_admin").get("/admin/scheduling/closure/")
    assert b"Snow day" in listing.content and setup["north"].name.encode() in listing.content


def test_a_closure_queues_a_refresh_of_everyones_next_available_slot(
    setup, monkeypatch, django_capture_on_commit_callbacks
):
    from scheduling.next_available import receivers

    queued = []
    monkeypatch.setattr(receivers.refresh_next_available_task, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        closure = Closure.objects.create(
            name="Snow day", start_date=setup["monday"], end_date=setup["monday"]
        )
    with django_capture_on_commit_callbacks(execute=True):
        closure.delete()
    assert queued == [None, None]  # None: every practitioner of the clinic

"""Smart booking from the patient pages: the form (validated by the API's rules), the status
page (websocket and polling URLs), completed and failed jobs, and whose job it is."""

from datetime import timedelta

import time_machine
from django.conf import settings
from django.utils import timezone

from scheduling.models import Appointment, SmartBookingJob
from scheduling.smart.job import smart_job_run
from scheduling.tests import factories as f
from tests import clock
from tests.fixtures import in_clinic

from .conftest import signed_in


def text(response) -> str:
    return response.content.decode()


def form(world, **extra) -> dict:
    today = timezone.localdate()
    return {
        "specialty": world.specialty.slug,
        "appointment_type": world.visit.pk,
        "earliest_date": (today + timedelta(days=2)).isoformat(),
        "latest_date": (today + timedelta(days=16)).isoformat(),
        "preferred_weekdays": ["1", "3"],
        "preferred_times": ["morning"],
        "where": "",
        "language": "",
        **extra,
    }


def test_the_form_has_a_label_for_every_choice(world, patient_client):
    page = text(patient_client.get("/smart/"))
    assert "Tell us what you need" in page
    fields = [
        "id_specialty",
        "id_appointment_type",
        "id_earliest_date",
        "id_latest_date",
        "id_where",
        "id_language",
        "id_preferred_weekdays_0",
        "id_preferred_times_2",
    ]
    for field in fields:
        assert f'for="{field}"' in page, field


def test_submitting_queues_a_job_and_opens_its_status_page(world, patient_client):
    patient_client.cookies["portal_tz"] = "America/Chicago"
    response = patient_client.post("/smart/", form(world, where=f"location-{world.location.pk}"))
    assert response.status_code == 302
    with in_clinic(world.clinic):
        job = SmartBookingJob.objects.get()
    assert response["Location"] == f"/smart/{job.pk}/"
    assert job.status == "queued" and job.patient == world.patient
    assert job.requested_by == world.user
    assert job.request["specialty"] == world.specialty.slug
    assert job.request["location"] == world.location.pk
    assert job.request["preferred_weekdays"] == [1, 3]
    assert job.request["preferred_times"] == ["morning"]
    assert job.request["tz"] == "America/Chicago"  # the patient's zone, not the clinic's


def test_status_page_names_the_websocket_and_the_status_url(world, patient_client):
    with in_clinic(world.clinic):
        job = SmartBookingJob.objects.create(patient=world.patient, request={})
    page = text(patient_client.get(f"/smart/{job.pk}/"))
    assert f'data-ws-url="ws://acme.localhost:{settings.CLINIC_WS_PORT}/ws/jobs/{job.pk}/"' in page
    assert f'data-status-url="/api/v1/smart-bookings/{job.pk}/"' in page
    assert f'data-fragment-url="/smart/{job.pk}/status/"' in page
    assert 'data-status="queued"' in page and "Request received" in page
    assert 'http-equiv="refresh"' in page  # without JavaScript, the page refreshes itself
    # The polling fallback reads the API with the page's session.
    api = patient_client.get(f"/api/v1/smart-bookings/{job.pk}/", HTTP_ACCEPT="application/json")
    assert api.status_code == 200 and api.json()["status"] == "queued"


def test_a_completed_job_shows_the_booking_and_why(world, patient_client):
    patient_client.post("/smart/", form(world))
    with in_clinic(world.clinic):
        job = SmartBookingJob.objects.get()
        assert smart_job_run(job.pk) == "completed"
        appointment = Appointment.objects.get(smart_job_id=job.pk)
    for url in (f"/smart/{job.pk}/", f"/smart/{job.pk}/status/"):
        page = text(patient_client.get(url))
        assert "Booked!" in page
        assert f"/appointments/{appointment.pk}/" in page
        assert "Why this time" in page and "Booked with" in page
    assert 'http-equiv="refresh"' not in text(patient_client.get(f"/smart/{job.pk}/"))


def test_a_failed_job_says_why_and_offers_the_nearest_options(world, patient_client):
    from scheduling.models import TimeOff

    # The run's instant, held still: the time off, the form's window and the job's search
    # all start from the same moment.
    now = clock.run_instant()
    with time_machine.travel(now, tick=False):
        with in_clinic(world.clinic):
            for practitioner in (world.maya, world.sam):  # both away for the whole window
                TimeOff.objects.create(
                    practitioner=practitioner, start=now, end=now + timedelta(days=18)
                )
        patient_client.post("/smart/", form(world))
        with in_clinic(world.clinic):
            job = SmartBookingJob.objects.get()
            assert smart_job_run(job.pk) == "failed"
        page = text(patient_client.get(f"/smart/{job.pk}/"))
    assert "We could not book a time for this request." in page
    assert "No free Speech session slot" in page
    options = page.split('class="option-list"', 1)[1].split("</ul>", 1)[0]
    assert options.count('class="option"') >= 3 and "/book/?" in options


def test_an_impossible_request_is_refused_before_any_job(world, patient_client):
    today = timezone.localdate()
    backwards = form(
        world,
        earliest_date=(today + timedelta(days=9)).isoformat(),
        latest_date=(today + timedelta(days=3)).isoformat(),
    )
    response = patient_client.post("/smart/", backwards)
    assert response.status_code == 400
    assert "must not be before the earliest" in text(response)
    no_care = patient_client.post("/smart/", form(world, specialty=""))
    assert no_care.status_code == 400 and "Choose the kind of care" in text(no_care)
    with in_clinic(world.clinic):
        other = f.specialty("psychology")
    nobody = patient_client.post("/smart/", form(world, specialty=other.slug))
    assert nobody.status_code == 400 and "offers" in text(nobody)
    with in_clinic(world.clinic):
        assert not SmartBookingJob.objects.exists()


def test_a_request_for_one_practitioner(world, patient_client):
    page = text(patient_client.get("/smart/", {"practitioner": world.maya.pk}))
    assert "With Dr. Maya Lopez." in page
    response = patient_client.post("/smart/", form(world, specialty="", practitioner=world.maya.pk))
    assert response.status_code == 302
    with in_clinic(world.clinic):
        assert SmartBookingJob.objects.get().request["practitioner"] == world.maya.pk


def test_another_patients_job_is_403_and_an_unknown_one_404(world, acme, make_user):
    with in_clinic(acme):
        job = SmartBookingJob.objects.create(patient=world.patient, request={})
    intruder = make_user(acme, "patient")
    with in_clinic(acme):
        f.patient(user=intruder)
    client = signed_in(acme, intruder)
    for url in (f"/smart/{job.pk}/", f"/smart/{job.pk}/status/"):
        response = client.get(url)
        assert response.status_code == 403 and "belongs to another patient" in text(response)
    assert client.get("/smart/00000000-0000-0000-0000-000000000000/").status_code == 404

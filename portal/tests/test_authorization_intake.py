"""Intake that knows about authorizations (issue 18): a visit type an authorization must pay
for shows a patient without one what is needed and "Request an assessment / authorization"
before any slot; the front desk works the request from a queue; slots shown are slots this
patient can book; smart booking says the true reason and offers no times that fail alike."""

from datetime import date

import pytest
import time_machine

from authorizations import services as auth_services
from authorizations.models import Authorization, AuthorizationRequest
from authorizations.tests import factories as af
from scheduling.models import SmartBookingJob
from scheduling.smart.job import smart_job_run
from scheduling.tests import factories as f
from tests.fixtures import in_clinic

from .test_booking import book_url, text

NOW = "2026-12-08T09:00:00-05:00"  # a Tuesday morning in New York


@pytest.fixture
def aba(world):
    """The world's visit type billed as 97156, a code payers authorize first (Acme's ABA)."""
    with in_clinic(world.clinic):
        code = f.service_code("97156", 15)
        code.requires_authorization = True
        code.save()
        world.visit.service_code = code
        world.visit.save()
        world.code = code
    return world


def practitioner_page(client, world) -> str:
    return text(client.get(f"/practitioners/{world.maya.pk}/?type={world.visit.pk}"))


def test_a_patient_without_an_authorization_is_told_before_any_slot(aba, patient_client):
    """The defect: every slot was shown, and only "Confirm booking" answered "No active
    authorization covers 97156 on 07 Dec 2026"."""
    with time_machine.travel(NOW, tick=False):
        page = practitioner_page(patient_client, aba)
        confirm = patient_client.get(book_url(aba, f.local(date(2026, 12, 9), 10)))
    assert "This visit needs an authorization from your insurer first" in page
    assert "Request an assessment / authorization" in page
    assert 'class="slot"' not in page
    # The confirmation page says the same before the patient commits, with no Confirm button.
    assert confirm.status_code == 200
    assert "Request an assessment / authorization" in text(confirm)
    assert "Confirm booking" not in text(confirm)


def test_posting_the_booking_anyway_explains_and_offers_the_request(aba, patient_client):
    with time_machine.travel(NOW, tick=False):
        start = f.local(date(2026, 12, 9), 10)
        response = patient_client.post(
            "/book/",
            {
                "practitioner": aba.maya.pk,
                "type": aba.visit.pk,
                "start": start.isoformat(),
                "location": aba.location.pk,
                "mode": "in_person",
                "idempotency_key": "k-1",
            },
        )
    assert response.status_code == 409
    assert "Request an assessment / authorization" in text(response)
    assert "No active authorization covers" not in text(response)


def test_the_request_reaches_the_queue_and_its_status_the_patients_pages(aba, patient_client):
    with time_machine.travel(NOW, tick=False):
        sent = patient_client.post(
            "/authorization-requests/", {"type": aba.visit.pk, "message": "Assessment please"}
        )
        again = patient_client.post("/authorization-requests/", {"type": aba.visit.pk})
        listing = text(patient_client.get("/appointments/"))
        page = practitioner_page(patient_client, aba)
    assert sent.status_code == 302 and again.status_code == 302
    with in_clinic(aba.clinic):
        [request] = AuthorizationRequest.objects.all()  # asking twice: the same request
        assert request.status == "pending" and request.message == "Assessment please"
        assert request.visit_name == "Speech session" and request.service_code == aba.code
    assert "Your requests for an authorization" in listing and "Waiting for the clinic" in listing
    assert "the clinic is working on it" in page and 'class="slot"' not in page


def test_a_declined_request_shows_its_reason_and_can_be_asked_again(aba, patient_client):
    with in_clinic(aba.clinic):
        request = auth_services.authorization_request_create(
            patient=aba.patient, service_code=aba.code
        )
        auth_services.authorization_request_decline(request=request, reason="No referral yet")
    with time_machine.travel(NOW, tick=False):
        listing = text(patient_client.get("/appointments/"))
        page = practitioner_page(patient_client, aba)
    assert "Declined" in listing and "No referral yet" in listing
    assert "Your last request was declined: No referral yet" in page
    assert "Request an assessment / authorization" in page


def test_once_approved_only_the_days_the_authorization_covers_are_offered(aba, patient_client):
    with in_clinic(aba.clinic):
        af.coverage(aba.patient)
        request = auth_services.authorization_request_create(
            patient=aba.patient, service_code=aba.code
        )
        auth_services.authorization_request_approve(
            request=request,
            number="PA-1",
            start_date=date(2026, 12, 10),  # from Thursday
            end_date=date(2026, 12, 31),
            units_authorized=12,
        )
    with time_machine.travel(NOW, tick=False):
        page = practitioner_page(patient_client, aba)
        listing = text(patient_client.get("/appointments/"))
    assert "needs an authorization" not in page
    assert 'class="slot"' in page
    for day in ("2026-12-08", "2026-12-09"):  # before the authorization: none offered
        assert f'datetime="{day}T' not in page
    assert 'datetime="2026-12-10T' in page
    assert "Authorization PA-1: you can book now." in listing


def test_units_exhausted_says_so_and_offers_a_renewal(aba, patient_client):
    with in_clinic(aba.clinic):
        af.authorization(aba.patient, aba.code, units=2)  # a 45-minute visit needs 3
    with time_machine.travel(NOW, tick=False):
        page = practitioner_page(patient_client, aba)
    assert "Your authorization has no units left for this visit" in page
    assert "needs 3 authorized unit(s); your insurer's authorization has 2 left" in page
    assert "Request a renewal of my authorization" in page


def test_a_visitor_is_told_what_is_needed_and_to_sign_up(aba, client_for):
    anonymous = client_for(aba.clinic)
    with time_machine.travel(NOW, tick=False):
        page = practitioner_page(anonymous, aba)
    assert "This visit needs an authorization from your insurer first" in page
    assert "Create an account to request it" in page and 'class="slot"' not in page


def _smart(world) -> SmartBookingJob:
    with in_clinic(world.clinic):
        job = SmartBookingJob.objects.create(
            patient=world.patient,
            request={
                "appointment_type": world.visit.pk,
                "specialty": world.specialty.slug,
                "earliest_date": "2026-12-09",
                "latest_date": "2026-12-20",
                "tz": "America/New_York",
            },
        )
        smart_job_run(job.pk)
        job.refresh_from_db()
    return job


def test_smart_booking_states_there_is_no_authorization_and_offers_nothing(aba):
    """The defect: "has no units left… renew it" to a patient who has none, then "nearest
    free times" that fail the same way."""
    with time_machine.travel(NOW, tick=False):
        job = _smart(aba)
    assert job.status == "failed"
    assert "you have none yet" in job.error_message
    assert "units left" not in job.error_message and "renew" not in job.error_message
    assert job.nearest_options == []


def test_smart_booking_with_too_few_units_says_how_many_are_left(aba):
    with in_clinic(aba.clinic):
        auth, _ = af.authorization(aba.patient, aba.code, units=2)
    with time_machine.travel(NOW, tick=False):
        job = _smart(aba)
    assert job.status == "failed"
    assert f"authorization {auth.number} has 2 unit(s) left" in job.error_message
    assert job.nearest_options == []


def test_nearest_options_are_only_days_the_authorization_covers(aba):
    with in_clinic(aba.clinic):
        af.authorization(
            aba.patient, aba.code, units=30, start=date(2026, 12, 21), end=date(2027, 1, 31)
        )
    with time_machine.travel(NOW, tick=False):
        job = _smart(aba)  # asks for 9-20 Dec: the authorization starts on the 21st
    assert job.status == "failed"
    assert "does not cover any free time in the dates asked for" in job.error_message
    assert job.nearest_options
    assert all(option["start"] >= "2026-12-21" for option in job.nearest_options)
    with in_clinic(aba.clinic):
        assert Authorization.objects.count() == 1

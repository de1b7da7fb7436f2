"""In Chromium against the live servers and a real Celery worker: a patient books, the booking
confirmation lands in the outbox (Django's file email backend) with its signed links and the
.ics, the patient follows "Cancel" from it, confirms, and sees the visit cancelled; the same
link then explains that it was used."""

import re
import time
from datetime import time as clock
from pathlib import Path
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from scheduling.models import Appointment
from scheduling.tests import factories as f
from tenants.models import Clinic
from tests.fixtures import _wait_for_worker, in_clinic, start_worker, stop_worker
from tests.live import open_page, save_screenshots

pytestmark = pytest.mark.usefixtures("committed")
PASSWORD = "a-long-test-password"


@pytest.fixture
def world(committed, make_user):
    """Pat (a patient account with an email address) and Dr. Maya Lopez, open every day from
    08:00 to 20:00 in New York, so slots exist at any test time."""
    clinic = Clinic.objects.get(slug="acme")
    user = make_user(clinic, "patient", email="pat@example.com", password=PASSWORD)
    with in_clinic(clinic):
        location = f.location("Midtown")
        maya = f.practitioner(name="Dr. Maya Lopez", at=location, hours=())
        for weekday in range(7):
            maya.working_hours.create(
                weekday=weekday, start_time=clock(8), end_time=clock(20), location=location
            )
        visit = f.appointment_type(maya, minutes=45, notice=60, horizon=90)
        patient = f.patient(user=user, first="Pat")
        patient.email = user.email
        patient.save()
    return SimpleNamespace(clinic=clinic, maya=maya, visit=visit, user=user)


def sign_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/signin/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="My appointments")).to_be_visible()


def _confirmation(outbox: Path, timeout: float = 60.0) -> str:
    """The confirmation email the worker wrote (the file backend: a file per connection)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob("*.log")):
            text = path.read_text()
            if "is booked for" in text and "Cancel: " in text:
                return text
        time.sleep(0.2)
    raise AssertionError(f"no confirmation in the outbox: {list(outbox.iterdir())}")


def test_a_patient_cancels_from_the_confirmation_emails_signed_link(
    live_servers, world, browser, tmp_path
):
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    mailer = start_worker(
        "--concurrency=1", "--pool=solo", name="mailer",
        env={
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(outbox),
            "NOTIFICATION_LINK_SCHEME": "http",
        },
    )  # fmt: skip
    try:
        _wait_for_worker(name="mailer")
        page = open_page(browser)
        base = live_servers.url(world.clinic)
        sign_in(page, base, "pat@example.com")
        page.goto(f"{base}/practitioners/{world.maya.pk}/")
        page.get_by_role("link", name="Next week").click()
        page.locator("a.slot").first.click()
        expect(page.get_by_role("heading", name="Confirm your booking")).to_be_visible()
        page.get_by_role("button", name="Confirm booking").click()
        expect(page.get_by_role("heading", name="You're booked!")).to_be_visible()
        visit_id = int(re.search(r"/appointments/(\d+)/", page.url).group(1))

        mail = _confirmation(outbox)
        assert "To: pat@example.com" in mail
        assert 'filename="visit.ics"' in mail and "BEGIN:VCALENDAR" in mail
        links = dict(re.findall(r"^(Confirm|Cancel|Reschedule): (\S+)$", mail, re.MULTILINE))
        assert set(links) == {"Confirm", "Cancel", "Reschedule"}
        host = live_servers.host(world.clinic).split(":")[0]
        for url in links.values():
            assert url.startswith(f"http://{host}/n/"), url
        assert len(set(links.values())) == 3  # one signed token per action
        cancel = links["Cancel"].split(host, 1)[1]

        page.goto(f"{base}{cancel}")
        expect(page.get_by_role("heading", name="Cancel your appointment?")).to_be_visible()
        save_screenshots(page, "notification-cancel-link")
        page.get_by_role("button", name="Cancel").click()
        expect(page.locator("[data-done=cancel]")).to_have_text("Your appointment is cancelled.")
        with in_clinic(world.clinic):
            visit = Appointment.objects.get(pk=visit_id)
            assert visit.status == "cancelled" and visit.patient.user.email == "pat@example.com"

        page.goto(f"{base}/appointments/{visit_id}/")
        expect(page.locator(".status-cancelled")).to_be_visible()
        # Followed again: the link was used, and says so.
        page.goto(f"{base}{cancel}")
        expect(page.get_by_role("heading", name="This link does nothing now")).to_be_visible()
        expect(page.locator("[data-problem=used]")).to_be_visible()
    finally:
        stop_worker(mailer)

"""The waitlist end to end in Chromium (Playwright) against live servers and a real Celery
worker: a visit is cancelled, the front desk's open board and the patient's open waitlist page
show the slot held for the patient, the patient's email (the worker's file outbox) carries the
signed link, the patient clicks it and books, and the board shows the booking in place of the
hold and the waitlist page the entry booked, live."""

import re
import time
from datetime import time as dtime
from datetime import timedelta

from django.conf import settings

from backoffice.tests.live_board import SCREENSHOTS, chromium_browser, live_servers
from clinic.celery import app as celery_app
from practice.models import Patient
from scheduling import services as scheduling
from scheduling.models import Appointment
from scheduling.tests import factories as f
from tests.fixtures import (
    _wait_for_worker,
    in_clinic,
    session_client,
    start_worker,
    stop_worker,
)
from tests.live import csp_watch, in_thread

from .. import services
from ..models import WaitlistOffer

PASSWORD = "waitlist-browser-pass-1"
EXPECT_MS = 15_000


def _mail_link(folder, address: str, timeout: float = 60.0) -> str:
    """The offer link of the email the worker wrote to `address` (as the confirmation test waits:
    a worker on a busy machine may first finish the tasks the cancellation queued)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = "\n".join(path.read_text() for path in sorted(folder.glob("*.log")))
        if address in text:
            found = re.search(r"https?://[^/\s]+(/w/[^/\s]+/)", text.split(address, 1)[1])
            if found:
                return found.group(1)
        time.sleep(0.1)
    files = sorted(folder.glob("*"))
    raise AssertionError(
        f"no offer email with a link to {address} in {len(files)} file(s): "
        + "\n".join(f"{path.name}:\n{path.read_text()[:3000]}" for path in files)
    )


def test_a_waitlisted_patient_is_offered_a_cancelled_slot_and_books_it_from_the_email(
    committed_acme, make_user, monkeypatch, tmp_path
):
    from playwright.sync_api import expect

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    acme = committed_acme
    desk = make_user(acme, "front_desk", email="wl-desk@acme.test", password=PASSWORD)
    wendy = make_user(acme, "patient", email="wendy@example.test")
    with in_clinic(acme):
        # one free hour a day, the one the cancellation frees: no other time can be offered
        practitioner = f.practitioner(name="Dr. Waitlist", hours=((dtime(10), dtime(11)),))
        kind = f.appointment_type(practitioner, minutes=60)
        day = f.next_weekday(2)
        visit = scheduling.appointment_book(
            patient=f.patient(first="Leaving"), practitioner=practitioner,
            appointment_type=kind, start=f.local(day, 10),
        )  # fmt: skip
        waiting = f.patient(first="Wendy", user=wendy)
        Patient.objects.filter(pk=waiting.pk).update(email="wendy@example.test")
        services.entry_create(
            patient=waiting, practitioner=practitioner, appointment_type=kind,
            earliest_date=day - timedelta(days=3), latest_date=day + timedelta(days=3),
        )  # fmt: skip
    mail = tmp_path / "mail"
    mail.mkdir()
    # tasks earlier tests queued and no worker ran name their rows by ids this run reuses (a
    # freed slot of another practitioner would be offered here): drop them
    celery_app.control.purge()
    worker = start_worker(
        "--concurrency=1", "--pool=solo", name="wlbrowser",
        env={
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(mail),
        },
    )  # fmt: skip
    try:
        _wait_for_worker(name="wlbrowser")
        with live_servers() as live, chromium_browser() as browser:
            context = browser.new_context(viewport={"width": 1280, "height": 1400})
            csp_watch(context)
            board = context.new_page()
            board.goto(
                live.url("acme", f"/admin/login/?next=/admin/scheduling/board/%3Fdate%3D{day}")
            )
            board.fill("#id_username", desk.email)
            board.fill("#id_password", PASSWORD)
            board.click("input[type=submit]")
            board.wait_for_selector("#schedule-board")
            expect(board.locator("#sb-live")).to_have_attribute(
                "data-state", "live", timeout=EXPECT_MS
            )
            column = board.locator(f'.sb-col[data-practitioner="{practitioner.pk}"]')
            expect(column.locator(f'[data-appointment="{visit.pk}"]')).to_be_visible()

            # Wendy is signed in on her waitlist page (phone), nothing held for her yet
            patient_context = browser.new_context(viewport={"width": 390, "height": 844})
            csp_watch(patient_context)
            cookie = session_client(acme, wendy).cookies[settings.SESSION_COOKIE_NAME].value
            patient_context.add_cookies(
                [
                    {
                        "name": settings.SESSION_COOKIE_NAME,
                        "value": cookie,
                        "url": live.url("acme", "/"),
                    }
                ]
            )
            waitlist_page = patient_context.new_page()
            waitlist_page.goto(live.url("acme", "/waitlist/"))
            live_part = waitlist_page.locator("[data-waitlist-live]")
            expect(live_part).to_have_attribute("data-channel", "websocket", timeout=EXPECT_MS)
            expect(live_part.locator("[data-offers]")).to_have_count(0)

            in_thread(lambda: _cancel(acme, visit))  # the worker offers the freed hour to Wendy
            held = column.locator(".sb-held")
            expect(held).to_be_visible(timeout=EXPECT_MS)
            expect(held).to_contain_text("Held for the waitlist")
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            board.screenshot(path=str(SCREENSHOTS / "board-waitlist-hold-desktop.png"))
            # her open page shows the hold without a reload
            expect(live_part.locator("[data-offers]")).to_contain_text(
                "Held for you", timeout=EXPECT_MS
            )
            expect(live_part.locator("[data-offers] a.button")).to_have_text("Book it or let it go")
            waitlist_page.screenshot(path=str(SCREENSHOTS / "waitlist-page-held-phone.png"))

            link = _mail_link(mail, "wendy@example.test")
            page = patient_context.new_page()
            page.goto(live.url("acme", link))
            expect(page.locator("h1")).to_contain_text("A time from the waitlist")
            page.screenshot(path=str(SCREENSHOTS / "waitlist-offer-phone.png"))
            page.get_by_role("button", name="Book this time").click()
            expect(page.locator('[data-done="accepted"]')).to_be_visible(timeout=EXPECT_MS)

            with in_clinic(acme):
                booked = Appointment.objects.get(patient=waiting, status="booked")
                assert booked.start == f.local(day, 10)
                assert WaitlistOffer.objects.get(patient=waiting).status == "accepted"
            expect(column.locator(f'[data-appointment="{booked.pk}"]')).to_be_visible(
                timeout=EXPECT_MS
            )
            expect(column.locator(".sb-held")).to_have_count(0, timeout=EXPECT_MS)
            board.screenshot(path=str(SCREENSHOTS / "board-waitlist-booked-desktop.png"))
            # and her waitlist page, still open, has nothing held and the entry booked
            expect(live_part.locator("[data-offers]")).to_have_count(0, timeout=EXPECT_MS)
            expect(live_part.locator("[data-entry]")).to_contain_text("Booked")
    finally:
        stop_worker(worker)


def _cancel(acme, visit) -> None:
    with in_clinic(acme):
        scheduling.appointment_cancel(appointment=visit, reason="Cannot come")

"""The patient pages in a real browser (Chromium through Playwright) against live servers
(granian + daphne) and a real Celery worker, on committed data. Each scenario writes
screenshots of the pages it passes through to artifacts/screenshots/ (desktop and phone)."""

import json
import re
from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from playwright.sync_api import expect

from accounts.models import User
from practice import formats
from scheduling import services
from scheduling.models import Appointment
from scheduling.tests import factories as f
from tenants.models import Clinic
from tests.fixtures import in_clinic
from tests.live import in_thread, open_page, save_screenshots

from .conftest import PASSWORD, build_world

pytestmark = pytest.mark.usefixtures("committed")


@pytest.fixture
def world(committed, make_user):
    acme = Clinic.objects.get(slug="acme")
    world = build_world(acme, make_user)
    with in_clinic(acme):
        f.location("Brooklyn")
        for name in ("Behavior analysis", "Occupational therapy"):
            specialty = f.specialty(name.lower().replace(" ", "-"))
            specialty.name = name
            specialty.save()
        world.specialty.name = "Speech therapy"
        world.specialty.save()
        # Open every day from 08:00 to 20:00 in New York, so slots exist at any test time.
        for practitioner in (world.maya, world.sam):
            practitioner.working_hours.all().delete()
            for weekday in range(7):
                practitioner.working_hours.create(
                    weekday=weekday, start_time=time(8), end_time=time(20), location=world.location
                )
    return world


def sign_in(page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/signin/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="My appointments")).to_be_visible()


def test_sign_up_find_book_see_download_and_cancel(live_servers, world, browser, tmp_path):
    page = open_page(browser, timezone_id="America/Chicago")
    base = live_servers.url("acme")

    page.goto(f"{base}/")
    expect(page.get_by_role("heading", name="Book your next visit in a minute")).to_be_visible()
    save_screenshots(page, "home")

    page.get_by_role("link", name="Create account").click()
    page.get_by_label("First name").fill("Nora")
    page.get_by_label("Last name").fill("Quinn")
    page.get_by_label("Email").fill("nora@example.com")
    page.get_by_label("Date of birth").fill("1988-04-02")
    page.get_by_label("Password", exact=True).fill("correct horse battery staple")
    page.get_by_label("Password again").fill("correct horse battery staple")
    save_screenshots(page, "signup")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("Check your email to finish signing up")).to_be_visible()
    # The emailed link (the live servers' mail is not ours to read): the same token.
    with in_clinic(world.clinic):
        nora = User.objects.get(email="nora@example.com")
        uid = urlsafe_base64_encode(force_bytes(nora.pk))
        token = default_token_generator.make_token(nora)
    page.goto(f"{base}/signup/{uid}/{token}/")

    # Find a practitioner: filter by specialty.
    expect(page.get_by_role("heading", name="Find a practitioner")).to_be_visible()
    expect(page.get_by_text("Welcome, Nora!")).to_be_visible()
    page.get_by_label("Specialty").select_option(world.specialty.slug)
    page.get_by_label("Language").select_option("es")
    page.get_by_role("button", name="Show results").click()
    expect(page.locator(".practitioner-card")).to_have_count(1)
    expect(page.locator(".practitioner-card").first).to_contain_text("Next available")
    save_screenshots(page, "find-practitioner")
    page.get_by_role("link", name="See times for Dr. Maya Lopez").click()

    # The week in the browser's zone (detected by portal.js), with the practitioner's slots.
    expect(page.get_by_role("heading", name="Dr. Maya Lopez")).to_be_visible()
    expect(page.get_by_label("Times shown in")).to_have_value("America/Chicago")
    save_screenshots(page, "practitioner")
    # Next week: outside the late-cancel window, so the visit can be cancelled online.
    page.get_by_role("link", name="Next week").click()
    expect(page.get_by_label("Times shown in")).to_have_value("America/Chicago")
    slot = page.locator("a.slot").first
    start = slot.locator("time").get_attribute("datetime")
    assert slot.locator("time").inner_text() == formats.time_format(
        datetime.fromisoformat(start), locale="en-US", zone="America/Chicago"
    )  # the picker: the browser's zone, then the place and its own time in its own zone
    expect(slot.locator(".slot-where")).to_have_text(world.location.name)
    expect(slot.locator(".slot-zone")).to_contain_text("New York time")
    # Once picked, an in-person visit reads in its location's zone, labelled (issue 18).
    shown = formats.time_format(
        datetime.fromisoformat(start), locale="en-US", zone="America/New_York"
    )
    slot.click()

    expect(page.get_by_role("heading", name="Confirm your booking")).to_be_visible()
    expect(page.locator(".summary")).to_contain_text(f"{shown} –")
    expect(page.locator(".summary")).to_contain_text("New York time")
    save_screenshots(page, "confirm")
    page.get_by_role("button", name="Confirm booking").click()

    expect(page.get_by_role("heading", name="You're booked!")).to_be_visible()
    save_screenshots(page, "booked")
    with in_clinic(world.clinic):
        appointment = Appointment.objects.get(patient__user__email="nora@example.com")
    assert appointment.start.isoformat() == start and appointment.source == "portal"

    with page.expect_download() as download:
        page.get_by_role("link", name="Add to calendar (.ics)").click()
    ics = download.value.path().read_text()
    assert "BEGIN:VCALENDAR" in ics and "Dr. Maya Lopez" in ics
    assert appointment.start.strftime("DTSTART:%Y%m%dT%H%M%SZ") in ics

    page.get_by_role("link", name="My appointments").first.click()
    visit = page.locator(f'[data-appointment="{appointment.pk}"]')
    expect(visit).to_contain_text("Speech session with Dr. Maya Lopez")
    expect(visit).to_contain_text(shown)
    save_screenshots(page, "my-appointments")
    with page.expect_download() as download:
        visit.get_by_role("link", name="Add to calendar").click()
    assert "BEGIN:VEVENT" in download.value.path().read_text()

    visit.get_by_role("link", name="Reschedule").click()
    expect(page.get_by_role("heading", name="Pick a new time")).to_be_visible()
    save_screenshots(page, "reschedule")
    page.go_back()

    visit.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("heading", name="Cancel this appointment?")).to_be_visible()
    page.get_by_label("Reason (optional)").fill("Travelling that week")
    save_screenshots(page, "cancel")
    page.get_by_role("button", name="Yes, cancel it").click()
    expect(page.get_by_text("Your appointment is cancelled.")).to_be_visible()
    past = page.locator("#past-title").locator("xpath=..")
    expect(past.locator(f'[data-appointment="{appointment.pk}"]')).to_contain_text("Cancelled")
    with in_clinic(world.clinic):
        appointment.refresh_from_db()
    assert appointment.status == "cancelled"
    assert appointment.cancellation_reason == "Travelling that week"


def _watch_frames(page) -> list[dict]:
    frames: list[dict] = []

    def on_socket(socket):
        socket.on("framereceived", lambda payload: frames.append(json.loads(payload)))

    page.on("websocket", on_socket)
    return frames


def test_smart_booking_reaches_booked_live_without_reloading(
    live_servers, world, browser, live_worker
):
    live_worker(delay=1.5)  # each job pauses in `running`, so the page shows it
    page = open_page(browser)
    frames = _watch_frames(page)
    base = live_servers.url("acme")
    page.goto(f"{base}/smart/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()  # asked to sign in
    save_screenshots(page, "signin")
    page.get_by_label("Email").fill(world.user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name=re.compile("Tell us what you need"))).to_be_visible()
    page.get_by_label("What kind of care?").select_option(world.specialty.slug)
    page.get_by_label("Tuesday").check()
    page.get_by_label("Morning (before noon)").check()
    save_screenshots(page, "smart-booking")
    page.get_by_role("button", name="Find and book").click()

    expect(page).to_have_url(re.compile(r"/smart/[0-9a-f-]{36}/$"))
    page.evaluate("window.__stillTheSamePage = true")
    status = page.locator("[data-smart-job]")
    expect(status).to_have_attribute("data-status", "running", timeout=20_000)
    expect(page.get_by_text("Looking for the best free time")).to_be_visible()
    save_screenshots(page, "smart-status-running")
    expect(status).to_have_attribute("data-status", "completed", timeout=30_000)
    expect(page.get_by_role("heading", name="Booked!")).to_be_visible()
    assert page.evaluate("window.__stillTheSamePage") is True  # no reload
    assert status.get_attribute("data-channel") == "websocket"
    assert [frame["status"] for frame in frames][-1] == "completed"
    assert "running" in [frame["status"] for frame in frames]
    expect(page.get_by_text("Why this time")).to_be_visible()
    save_screenshots(page, "smart-status-booked")
    with in_clinic(world.clinic):
        booked = Appointment.objects.get(patient=world.patient)
    assert booked.source == "smart"
    local = booked.start.astimezone(ZoneInfo("America/New_York"))  # the browser's zone
    assert local.weekday() == 1 and local.hour < 12  # Tuesday morning, as asked
    page.get_by_role("link", name="View").click()
    expect(page.get_by_role("heading", name="Speech session")).to_be_visible()


def test_smart_booking_falls_back_to_polling_when_the_websocket_fails(
    live_servers, world, browser, live_worker
):
    live_worker(delay=0.5)
    page = open_page(browser)
    page.route_web_socket(re.compile(r"/ws/jobs/"), lambda socket: socket.close())
    base = live_servers.url("acme")
    sign_in(page, base, world.user.email)
    page.goto(f"{base}/smart/")
    page.get_by_label("What kind of care?").select_option(world.specialty.slug)
    page.get_by_role("button", name="Find and book").click()
    expect(page).to_have_url(re.compile(r"/smart/[0-9a-f-]{36}/$"))
    page.evaluate("window.__stillTheSamePage = true")
    status = page.locator("[data-smart-job]")
    expect(status).to_have_attribute("data-status", "completed", timeout=30_000)
    assert status.get_attribute("data-channel") == "polling"
    assert page.evaluate("window.__stillTheSamePage") is True
    expect(page.get_by_role("heading", name="Booked!")).to_be_visible()


def test_another_patients_appointment_is_403_and_unknown_pages_404(
    live_servers, world, browser, make_user
):
    def book():
        with in_clinic(world.clinic):
            return services.appointment_book(
                patient=world.patient, practitioner=world.maya, appointment_type=world.visit,
                start=f.local(f.next_weekday(2), 10),
            )  # fmt: skip

    theirs = in_thread(book)
    intruder = make_user(world.clinic, "patient", email="ivy@example.com", password=PASSWORD)
    with in_clinic(world.clinic):
        f.patient(user=intruder, first="Ivy")
    page = open_page(browser)
    base = live_servers.url("acme")
    sign_in(page, base, intruder.email)
    response = page.goto(f"{base}/appointments/{theirs.pk}/")
    assert response.status == 403
    expect(page.get_by_role("heading", name="This page isn't yours to open")).to_be_visible()
    expect(page.get_by_text("This appointment belongs to another patient.")).to_be_visible()
    save_screenshots(page, "error-403")
    response = page.goto(f"{base}/appointments/{theirs.pk}/calendar.ics")
    assert response.status == 403
    response = page.goto(f"{base}/no-such-page/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="We couldn't find that page")).to_be_visible()
    save_screenshots(page, "error-404")


def test_a_slot_taken_meanwhile_shows_the_alternatives_in_place(live_servers, world, browser):
    page = open_page(browser)
    base = live_servers.url("acme")
    sign_in(page, base, world.user.email)
    day = f.next_weekday(3)
    page.goto(f"{base}/practitioners/{world.maya.pk}/?type={world.visit.pk}&from={day}")
    page.locator("a.slot").first.click()
    expect(page.get_by_role("heading", name="Confirm your booking")).to_be_visible()
    start = page.locator('input[name="start"]').get_attribute("value")

    def book_it_first():  # another patient wins the slot while this one reads the page
        with in_clinic(world.clinic):
            services.appointment_book(
                patient=f.patient(first="Rival"), practitioner=world.maya,
                appointment_type=world.visit, start=datetime.fromisoformat(start),
            )  # fmt: skip

    in_thread(book_it_first)
    page.get_by_role("button", name="Confirm booking").click()
    expect(page.get_by_role("heading", name="That time was just taken")).to_be_visible()
    options = page.locator(".option-list .option")
    expect(options.first).to_be_visible()
    assert options.count() >= 3
    save_screenshots(page, "slot-taken")
    options.first.click()
    page.get_by_role("button", name="Confirm booking").click()
    expect(page.get_by_role("heading", name="You're booked!")).to_be_visible()


def test_booking_works_with_the_keyboard_alone_and_focus_is_visible(live_servers, world, browser):
    page = open_page(browser)
    base = live_servers.url("acme")
    page.goto(f"{base}/signin/")
    expect(page.get_by_label("Email")).to_be_focused()  # autofocus
    page.keyboard.type(world.user.email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="My appointments")).to_be_visible()

    page.goto(f"{base}/practitioners/{world.maya.pk}/?type={world.visit.pk}")
    page.keyboard.press("Tab")  # the skip link comes first
    assert page.evaluate("document.activeElement.textContent").strip() == "Skip to content"
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('slot')"):
            break
    else:
        pytest.fail("no slot is reachable with the Tab key")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none"), "the focused slot shows no focus ring"
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Confirm your booking")).to_be_visible()
    page.get_by_role("button", name="Confirm booking").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="You're booked!")).to_be_visible()


def test_the_patient_can_change_the_time_zone_of_the_slots(live_servers, world, browser):
    page = open_page(browser, timezone_id="America/New_York")
    day = f.next_weekday(2)
    page.goto(f"{live_servers.url('acme')}/practitioners/{world.maya.pk}/?from={day}")
    expect(page.get_by_label("Times shown in")).to_have_value("America/New_York")
    first = page.locator("a.slot").first
    moment = first.locator("time").get_attribute("datetime")
    expect(first.locator("time")).to_have_text("8:00 AM")
    expect(first.locator(".slot-where")).to_have_text(world.location.name)
    expect(first.locator(".slot-zone")).to_have_count(0)  # the viewer's zone is the place's
    page.get_by_label("Times shown in").select_option("Europe/Berlin")  # from the keyboard ...
    page.get_by_role("button", name="Change").click()  # ... the button applies it
    expect(page.get_by_label("Times shown in")).to_have_value("Europe/Berlin")
    same = page.locator(f'a.slot time[datetime="{moment}"]')  # the same instant, now
    expect(same).to_have_text(re.compile(r"^(1|2|3):00 PM$"))  # 14:00 in Berlin (±1 h near DST)
    page.get_by_role("link", name="Next week").click()  # the choice sticks
    expect(page.get_by_label("Times shown in")).to_have_value("Europe/Berlin")


def test_repeated_wrong_passwords_lock_sign_in_with_a_page_saying_when_to_retry(
    live_servers, world, browser
):
    """accounts.lockout: the fifth wrong password of an account answers 429 with a page in the
    portal's look; the admin's sign-in then refuses the same account in the admin's look."""
    page = open_page(browser)
    base = live_servers.url("acme")
    page.goto(f"{base}/signin/")
    for attempt in range(5):
        page.get_by_label("Email").fill(world.user.email)
        page.get_by_label("Password").fill("not-the-password")
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.get_by_role("button", name="Sign in").click()
        if attempt < 4:
            assert answer.value.status == 200
            expect(page.get_by_text("do not match an account")).to_be_visible()
    assert answer.value.status == 429
    assert 0 < int(answer.value.headers["retry-after"]) <= 900
    expect(page.get_by_role("heading", name="Too many attempts")).to_be_visible()
    expect(page.get_by_text("Please try again in 15 minutes.")).to_be_visible()
    save_screenshots(page, "signin-locked")
    page.goto(f"{base}/admin/login/")
    page.get_by_label("Email").fill(world.user.email)
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Log in").click()
    assert answer.value.status == 429
    expect(page.get_by_role("heading", name="Too many sign-in attempts")).to_be_visible()
    save_screenshots(page, "admin-login-locked")


def test_the_patient_downloads_their_data_and_asks_to_be_erased(live_servers, world, browser):
    page = open_page(browser)
    base = live_servers.url("acme")
    sign_in(page, base, world.user.email)
    page.get_by_role("link", name="Your data").click()
    expect(page.get_by_role("heading", name="Your data", exact=True)).to_be_visible()
    save_screenshots(page, "your-data")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download (JSON, complete)").click()
    copy = json.loads(open(download.value.path(), encoding="utf-8").read())
    assert copy["patient"]["id"] == world.patient.pk and copy["audience"] == "patient"
    with page.expect_download() as download:
        page.get_by_role("link", name="Download (PDF summary)").click()
    assert open(download.value.path(), "rb").read(4) == b"%PDF"
    page.get_by_label("Anything the clinic should know (optional)").fill("Moving abroad")
    page.get_by_role("button", name="Ask to erase my data").click()
    expect(page.get_by_text("Your request was sent.")).to_be_visible()
    expect(page.get_by_text("Pending")).to_be_visible()
    expect(page.get_by_role("button", name="Ask to erase my data")).to_have_count(0)
    save_screenshots(page, "your-data-requested")

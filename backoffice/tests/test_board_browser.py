"""The schedule board in a real browser (Playwright driving Debian's Chromium) against live
servers (granian for HTTP, daphne for websockets) on the test database: the front desk books a
patient into a free slot, meets a taken slot's 409 alternatives and books one, then sees an
appointment booked through the API appear without reloading. Screenshots of the board go to
artifacts/screenshots/ (git-ignored)."""

import re
from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

from authorizations.tests import factories as af
from practice.models import Patient
from scheduling import services
from scheduling.models import Appointment, TimeOff, WorkingHours
from scheduling.tests import factories as f
from tests import clock
from tests.fixtures import in_clinic
from tests.live import csp_watch

from .live_board import SCREENSHOTS, chromium_browser, live_servers

PASSWORD = "board-browser-pass-1"
EXPECT_MS = 10_000


def _patient(first: str, last: str, born: date) -> Patient:
    return Patient.objects.create(
        first_name=first, last_name=last, date_of_birth=born, timezone="America/New_York"
    )


def seed_day(day: date) -> dict:
    """A realistic day: four practitioners, a lunch break, time off, and visits in every
    status (the past-looking ones moved through the services with an explicit `now`)."""
    aba = f.specialty("behavior-analysis")
    physio = f.specialty("physical-therapy")
    downtown = f.location("Downtown")
    uptown = f.location("Uptown")
    code = f.service_code("97153", 15)
    lopez = f.practitioner(name="Dr. Maya Lopez", specialties=(aba,), at=downtown)
    rivera = f.practitioner(name="Sam Rivera", specialties=(aba,), at=downtown)
    chen = f.practitioner(name="Dr. Wei Chen", specialties=(physio,), at=uptown)
    obi = f.practitioner(
        name="Ada Obi", specialties=(aba,), at=downtown, hours=((time(9), time(12)),)
    )
    WorkingHours.objects.create(
        practitioner=obi, weekday=day.weekday(), start_time=time(13), end_time=time(17),
        location=downtown,
    )  # fmt: skip
    for practitioner, title in ((lopez, "BCBA"), (rivera, "RBT"), (chen, "PT"), (obi, "BCaBA")):
        practitioner.title = title
        practitioner.save(update_fields=["title"])
    session = f.appointment_type(lopez, rivera, obi, chen, minutes=60, code=code)
    session.name = "ABA session"
    session.save(update_fields=["name"])
    intake = f.appointment_type(lopez, chen, minutes=30)
    intake.name = "Intake"
    intake.save(update_fields=["name"])
    people = [
        _patient("Noah", "Okafor", date(2016, 3, 2)),
        _patient("Lily", "Brennan", date(2015, 7, 19)),
        _patient("Mateo", "Silva", date(2017, 1, 8)),
        _patient("Ava", "Nguyen", date(2014, 11, 23)),
        _patient("Ethan", "Kowalski", date(2018, 5, 30)),
        _patient("Zoe", "Haddad", date(2016, 9, 12)),
        _patient("Leo", "Martins", date(2015, 2, 4)),
    ]
    af.authorization(people[0], code, units=120)
    af.authorization(people[1], code, units=40)

    def book(patient, practitioner, hour, minute=0, kind=session):
        return services.appointment_book(
            patient=patient, practitioner=practitioner, appointment_type=kind,
            start=f.local(day, hour, minute),
        )  # fmt: skip

    def moved(appointment):
        return appointment.start + timedelta(minutes=10)

    done = book(people[1], lopez, 9)
    services.appointment_check_in(appointment=done, now=moved(done))
    services.appointment_complete(appointment=done, now=moved(done))
    here = book(people[2], lopez, 10, 15)
    services.appointment_check_in(appointment=here, now=moved(here))
    book(people[3], lopez, 15, kind=intake)
    missed = book(people[4], rivera, 9)
    services.appointment_no_show(appointment=missed, now=moved(missed))
    book(people[5], rivera, 10)
    book(people[6], rivera, 14, 30)
    book(people[3], chen, 9, 30, kind=intake)
    book(people[5], chen, 11)
    gone = book(people[6], chen, 16)
    services.appointment_cancel(appointment=gone, reason="Family emergency")
    book(people[4], obi, 9)
    book(people[2], obi, 13, 30)
    TimeOff.objects.create(
        practitioner=chen, start=f.local(day, 13), end=f.local(day, 15), reason="Conference"
    )
    return {"lopez": lopez, "rivera": rivera, "obi": obi, "session": session, "people": people}


def test_front_desk_books_on_the_board_and_sees_an_api_booking_appear_live(
    committed_acme, make_user, monkeypatch
):
    from playwright.sync_api import expect

    # Playwright's sync API runs an event loop in this thread; the ORM calls below are plain
    # blocking calls made between browser steps.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    acme = committed_acme
    desk = make_user(acme, "front_desk", email="desk@acme.test", password=PASSWORD,
                     full_name="Fran Desk")  # fmt: skip
    make_user(acme, "integrator", email="ehr@acme.test", password=PASSWORD)
    day = f.next_weekday(2)
    # The run's instant, which the live servers follow too (the board's "today", check-in).
    today = clock.run_instant().astimezone(ZoneInfo(acme.timezone)).date()
    with in_clinic(acme):
        seed = seed_day(day)
        # A visit today, booked earlier in the day (an explicit `now`: the run's hour varies).
        services.appointment_book(
            patient=seed["people"][5], practitioner=seed["rivera"],
            appointment_type=seed["session"], start=f.local(today, 9), now=f.local(today, 8),
        )  # fmt: skip
    lopez, rivera, obi = seed["lopez"], seed["rivera"], seed["obi"]
    noah, leo = seed["people"][0], seed["people"][6]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with live_servers() as live, chromium_browser() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        csp_watch(context)  # the board and the admin under the Content Security Policy
        page = context.new_page()
        page.goto(live.url("acme", f"/admin/login/?next=/admin/scheduling/board/%3Fdate%3D{day}"))
        page.fill("#id_username", desk.email)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("#schedule-board")
        expect(page.locator("#sb-live")).to_have_attribute("data-state", "live", timeout=EXPECT_MS)
        page.evaluate("window.sameDocument = true")  # gone if the page reloads

        # 1. Book Noah with Dr. Lopez into the free 13:00 slot.
        slot = f.local(day, 13).isoformat()
        page.locator(f'.sb-free[data-practitioner="{lopez.pk}"][data-start="{slot}"]').click()
        expect(page.locator("#sb-book")).to_be_visible()
        page.fill("#sb-patient-q", "okafor")
        page.locator("#sb-patient-results button", has_text="Noah Okafor").click()
        page.select_option("#sb-type", str(seed["session"].pk))
        page.click("#sb-book-submit")
        booked = page.locator(
            f'.sb-col[data-practitioner="{lopez.pk}"] .sb-appt', has_text="Noah Okafor"
        )
        expect(booked).to_be_visible(timeout=EXPECT_MS)
        expect(booked).to_contain_text("1:00 PM–2:00 PM")  # the clinic's clock (en-US)
        with in_clinic(acme):
            row = Appointment.objects.get(patient=noah, start=f.local(day, 13))
            assert row.source == "staff" and row.unit_reservation.units == 4

        # 2. A 60-minute visit at 12:30 would overlap it: the API's 409, with alternatives.
        taken = f.local(day, 12, 30).isoformat()
        page.locator(f'.sb-free[data-practitioner="{lopez.pk}"][data-start="{taken}"]').click()
        page.fill("#sb-patient-q", "martins")
        page.locator("#sb-patient-results button", has_text="Leo Martins").click()
        page.select_option("#sb-type", str(seed["session"].pk))
        page.click("#sb-book-submit")
        problem = page.locator("#sb-book-problem")
        expect(problem).to_be_visible(timeout=EXPECT_MS)
        expect(problem).to_contain_text("already booked")
        alternatives = problem.locator(".sb-alt")
        expect(alternatives.first).to_be_visible()
        assert alternatives.count() >= 3
        page.screenshot(path=str(SCREENSHOTS / "board-conflict-desktop.png"))
        first_choice = alternatives.first.inner_text()
        alternatives.first.click()
        expect(page.locator("#sb-book")).to_be_hidden(timeout=EXPECT_MS)
        expect(page.locator(".sb-appt", has_text="Leo Martins").first).to_be_visible()
        with in_clinic(acme):
            assert Appointment.objects.filter(patient=leo, source="staff").exists(), first_choice

        # 3. An integrator books through the API (JWT): the board shows it without a reload.
        with live.http("acme") as http:
            token = http.post(
                "/api/v1/auth/token/", json={"email": "ehr@acme.test", "password": PASSWORD}
            ).json()["access"]
            response = http.post(
                "/api/v1/appointments/",
                json={
                    "patient": seed["people"][3].pk,
                    "practitioner": obi.pk,
                    "appointment_type": seed["session"].pk,
                    "start": f.local(day, 15).isoformat(),
                },
                headers={"Authorization": f"Bearer {token}"},
            )
        assert response.status_code == 201, response.text
        from_api = page.locator(
            f'.sb-col[data-practitioner="{obi.pk}"] [data-appointment="{response.json()["id"]}"]'
        )
        expect(from_api).to_be_visible(timeout=EXPECT_MS)
        expect(from_api).to_contain_text("Ava Nguyen")
        assert page.evaluate("window.sameDocument") is True  # no reload happened

        # 4. Check-in is offered on the visit's own day only (scheduling.states): not on this
        # later day's visit, but on today's, from today's board.
        page.locator(
            f'.sb-col[data-practitioner="{rivera.pk}"] .sb-appt', has_text="Zoe Haddad"
        ).click()
        expect(page.locator('#sb-appt-actions [data-action="cancel"]')).to_be_visible()
        expect(page.locator('#sb-appt-actions [data-action="check-in"]')).to_have_count(0)
        page.goto(live.url("acme", f"/admin/scheduling/board/?date={today}"))
        expect(page.locator("#sb-live")).to_have_attribute("data-state", "live", timeout=EXPECT_MS)
        todays = page.locator(
            f'.sb-col[data-practitioner="{rivera.pk}"] .sb-appt', has_text="Zoe Haddad"
        )
        todays.click()
        page.locator('#sb-appt-actions [data-action="check-in"]').click()
        expect(todays).to_have_class(re.compile("sb-status-checked_in"), timeout=EXPECT_MS)

        page.goto(live.url("acme", f"/admin/scheduling/board/?date={day}"))
        expect(page.locator("#sb-live")).to_have_attribute("data-state", "live", timeout=EXPECT_MS)
        page.mouse.move(1, 1)
        page.wait_for_timeout(3800)  # let the highlight and the toast fade before the pictures
        page.screenshot(path=str(SCREENSHOTS / "board-day-desktop.png"))
        page.goto(live.url("acme", f"/admin/scheduling/board/?date={day}&view=week"))
        page.wait_for_selector(".sb-week")
        expect(page.locator("#sb-live")).to_have_attribute("data-state", "live", timeout=EXPECT_MS)
        page.screenshot(path=str(SCREENSHOTS / "board-week-desktop.png"))
        # The rest of the back office, for the record.
        for name, path in (
            ("admin-index", "/admin/"),
            ("appointments", f"/admin/scheduling/appointment/?start__gte={day}"),
            ("patient", f"/admin/practice/patient/{noah.pk}/change/"),
        ):
            page.goto(live.url("acme", path))
            page.screenshot(path=str(SCREENSHOTS / f"{name}-desktop.png"), full_page=True)

        phone = browser.new_context(
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            storage_state=context.storage_state(),
        )
        csp_watch(phone)
        mobile = phone.new_page()
        mobile.goto(live.url("acme", f"/admin/scheduling/board/?date={day}"))
        mobile.wait_for_selector(".sb-day")
        expect(mobile.locator("#sb-live")).to_have_attribute(
            "data-state", "live", timeout=EXPECT_MS
        )
        mobile.screenshot(path=str(SCREENSHOTS / "board-day-phone.png"))
        mobile.locator(".sb-appt", has_text="Noah Okafor").click()
        expect(mobile.locator("#sb-appt")).to_be_visible()
        mobile.screenshot(path=str(SCREENSHOTS / "board-appointment-phone.png"))
        phone.close()
        context.close()
    for name in ("board-day-desktop", "board-week-desktop", "board-day-phone"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000

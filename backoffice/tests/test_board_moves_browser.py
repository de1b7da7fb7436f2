"""Staff scheduling in a real browser (Playwright driving Debian's Chromium) against live
servers, under the Content Security Policy (issue 18): the front desk drags a visit to another
time and to another practitioner and a second open board sees it move; a taken slot in the
Move dialog offers the 409's alternatives; a same-day walk-in is booked inside the patients'
two-hour notice; a holiday removes its day from the board, availability, smart booking and a
treatment plan's series. Screenshots at 1280x800 and 390x844 in artifacts/screenshots/."""

import time as monotonic_clock
from datetime import time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from practice.models import ClinicSettings
from scheduling.models import Appointment, AppointmentType, SmartBookingJob
from scheduling.smart.job import smart_job_run
from scheduling.tests import factories as f
from scheduling.tests.factories import build_world
from tests import clock
from tests.fixtures import in_clinic
from tests.live import csp_watch

from .live_board import SCREENSHOTS, chromium_browser, live_servers

PASSWORD = "board-moves-pass-1"
EXPECT_MS = 10_000


def _sign_in(page, live, email: str, path: str) -> None:
    page.goto(live.url("acme", f"/admin/login/?next={path}"))
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#schedule-board")


def _settle(page, quiet_s: float = 0.6, within_s: float = 10.0) -> None:
    """Wait until the board has stopped re-rendering: no refetch of the grid for `quiet_s` and
    no animation running (a moved visit flashes, scaled, for 2.4 s). A live event makes the
    board replace its grid, which detaches the node a drag is about to grab."""
    deadline = monotonic_clock.monotonic() + within_s
    seen, quiet_since = None, monotonic_clock.monotonic()
    while monotonic_clock.monotonic() < deadline:
        state = page.evaluate(
            "[document.getElementById('schedule-board').dataset.refreshes || '0',"
            " document.getAnimations().length]"
        )
        if state != seen or state[1]:
            seen, quiet_since = state, monotonic_clock.monotonic()
        elif monotonic_clock.monotonic() - quiet_since >= quiet_s:
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"the board kept re-rendering for {within_s} s: {seen}")


def _drag(page, appointment_id: int, practitioner_id: int, hour: int, minute: int = 0) -> None:
    """Drag the visit by its top edge to the column of `practitioner_id` at hour:minute, with
    the mouse (the page scrolled so that both ends are in view), once the board is still."""
    from playwright.sync_api import Error

    for attempt in range(3):
        _settle(page)
        try:
            grid = page.locator(".sb-day")
            first = int(grid.get_attribute("data-first"))
            ppm = page.evaluate(
                "parseFloat(getComputedStyle(document.querySelector('.sb-day'))"
                ".getPropertyValue('--ppm'))"
            )
            column = page.locator(f'.sb-col[data-practitioner="{practitioner_id}"]')
            page.locator(f'[data-appointment="{appointment_id}"]').scroll_into_view_if_needed()
            source = page.locator(f'[data-appointment="{appointment_id}"]').bounding_box()
            target = column.bounding_box()
            break
        except Error:  # the grid was re-rendered by a late live event: settle and look again
            if attempt == 2:
                raise
    assert source and target
    page.mouse.move(source["x"] + 10, source["y"] + 4)
    page.mouse.down()
    page.mouse.move(source["x"] + 30, source["y"] + 20, steps=4)
    y = target["y"] + (hour * 60 + minute - first) * ppm + 4
    page.mouse.move(target["x"] + 20, y, steps=8)
    page.mouse.up()


def test_front_desk_moves_walks_in_and_closes_a_day_on_live_boards(
    committed_acme, make_user, monkeypatch
):
    from playwright.sync_api import expect

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    acme = committed_acme
    desks = [
        make_user(acme, "front_desk", email=f"desk{n}@acme.test", password=PASSWORD) for n in (1, 2)
    ]
    zone = ZoneInfo(acme.timezone)
    now = clock.run_instant().astimezone(zone)
    today = now.date()
    with in_clinic(acme):
        world = build_world()
        # Walk-ins: a practitioner on duty around the clock, a visit the patients must book
        # two hours ahead; staff have no notice (the clinic's default).
        walk = f.practitioner(name="Dr. Duty", hours=((time(0), time(23, 59)),),
                              at=world.downtown)  # fmt: skip
        quick = f.appointment_type(walk, minutes=30, notice=120)
        AppointmentType.objects.filter(pk=quick.pk).update(name="Walk-in visit")
        assert ClinicSettings.load().staff_min_notice_minutes == 0
    day = world.day
    board_path = f"/admin/scheduling/board/?date={day}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with live_servers() as live, chromium_browser() as browser:
        boards = []
        for desk in desks:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            csp_watch(context)
            page = context.new_page()
            _sign_in(page, live, desk.email, board_path.replace("?", "%3F").replace("=", "%3D"))
            expect(page.locator("#sb-live")).to_have_attribute(
                "data-state", "live", timeout=EXPECT_MS
            )
            boards.append(page)
        mover, watcher = boards
        visit = world.alpha_visit.pk
        on_watcher = watcher.locator(f'[data-appointment="{visit}"]')

        # 1. Drag Robin's 10:00 with Dr. Alpha to 14:00: the other board sees it move.
        mover.set_viewport_size({"width": 1280, "height": 1800})  # the whole day in view
        _drag(mover, visit, world.alpha.pk, 14)
        expect(on_watcher).to_contain_text("2:00 PM–3:00 PM", timeout=EXPECT_MS)
        expect(
            watcher.locator(
                f'.sb-col[data-practitioner="{world.alpha.pk}"] [data-appointment="{visit}"]'
            )
        ).to_be_visible()
        # 2. ... and to Dr. Beta's column at 15:00.
        _drag(mover, visit, world.beta.pk, 15)
        in_beta = watcher.locator(
            f'.sb-col[data-practitioner="{world.beta.pk}"] [data-appointment="{visit}"]'
        )
        expect(in_beta).to_be_visible(timeout=EXPECT_MS)
        expect(in_beta).to_contain_text("3:00 PM–4:00 PM")
        mover.set_viewport_size({"width": 1280, "height": 800})
        mover.screenshot(path=str(SCREENSHOTS / "board-move-desktop.png"))
        with in_clinic(acme):
            moved = Appointment.objects.get(pk=visit)
            assert (moved.practitioner_id, moved.start) == (world.beta.pk, world.at(15))
            assert moved.unit_reservation.units == 4

        # 3. The Move dialog onto Beta's 11:00 (Casey's): the 409's alternatives, one taken.
        mover.locator(f'[data-appointment="{visit}"]').click()
        mover.locator('#sb-appt-actions [data-action="move"]').click()
        mover.select_option("#sb-move-practitioner", str(world.beta.pk))
        mover.fill("#sb-move-date", day.isoformat())
        mover.fill("#sb-move-time", "11:30")
        mover.click("#sb-move-submit")
        problem = mover.locator("#sb-appt-problem")
        expect(problem).to_contain_text("already booked", timeout=EXPECT_MS)
        expect(problem.locator(".sb-alt").first).to_be_visible()
        mover.screenshot(path=str(SCREENSHOTS / "board-move-conflict-desktop.png"))
        problem.locator(".sb-alt").first.click()
        expect(mover.locator("#sb-appt")).to_be_hidden(timeout=EXPECT_MS)
        with in_clinic(acme):
            moved = Appointment.objects.get(pk=visit)
            assert moved.start != world.at(15) and moved.reschedule_count == 3

        # 4. A same-day walk-in from today's board, inside the patients' two-hour notice.
        opened = timezone.now()  # the run's clock, which has ticked since the run began
        mover.goto(live.url("acme", f"/admin/scheduling/board/?date={today}"))
        expect(mover.locator("#sb-live")).to_have_attribute("data-state", "live", timeout=EXPECT_MS)
        mover.locator(f'.sb-walkin[data-practitioner="{walk.pk}"]').click()
        expect(mover.locator("#sb-book-title")).to_have_text("Walk-in visit")
        mover.fill("#sb-patient-q", world.other_patient.last_name)
        mover.locator("#sb-patient-results button", has_text=str(world.other_patient)).click()
        mover.select_option("#sb-type", str(quick.pk))
        mover.click("#sb-book-submit")
        expect(mover.locator("#sb-book")).to_be_hidden(timeout=EXPECT_MS)
        with in_clinic(acme):
            walked_in = Appointment.objects.get(patient=world.other_patient, appointment_type=quick)
            assert walked_in.source == "staff"
            # the next step from the moment it was booked (the run's clock ticks meanwhile)
            assert opened < walked_in.start <= timezone.now() + timedelta(minutes=30)
        phone = browser.new_context(
            viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
            has_touch=True, storage_state=mover.context.storage_state(),
        )  # fmt: skip
        csp_watch(phone)
        mobile = phone.new_page()
        walk_in_day = walked_in.start.astimezone(zone).date()  # today, or 00:00 past midnight
        mobile.goto(live.url("acme", f"/admin/scheduling/board/?date={walk_in_day}"))
        mobile.wait_for_selector(".sb-day")
        expect(mobile.locator(f'[data-appointment="{walked_in.pk}"]')).to_be_visible()
        mobile.screenshot(path=str(SCREENSHOTS / "board-walk-in-phone.png"))
        phone.close()

        # 5. A holiday the day after: added in the admin, gone from the board, availability,
        # smart booking and a treatment plan's series.
        holiday = day + timedelta(days=1)
        mover.goto(live.url("acme", "/admin/scheduling/closure/add/"))
        mover.fill("#id_name", "Founders' day")
        mover.fill("#id_start_date", holiday.isoformat())
        mover.fill("#id_end_date", holiday.isoformat())
        mover.click("input[name=_save]")
        expect(mover.locator(".messagelist")).to_contain_text("Founders", timeout=EXPECT_MS)
        mover.goto(live.url("acme", f"/admin/scheduling/board/?date={holiday}"))
        expect(mover.locator(".sb-closures")).to_contain_text("Founders' day")
        assert mover.locator(".sb-free").count() == 0
        mover.screenshot(path=str(SCREENSHOTS / "board-holiday-desktop.png"))
        with live.http("acme") as http:
            answer = http.get(
                "/api/v1/availability/",
                params={
                    "appointment_type": world.visit.pk,
                    "specialty": "behavior-analysis",
                    "start": day.isoformat(),
                    "end": (day + timedelta(days=3)).isoformat(),
                    "tz": "America/New_York",
                },
            )
        assert answer.status_code == 200, answer.text
        days = {
            slot["start"][:10]
            for row in answer.json()["practitioners"]
            for slot in row["slots"]
        }  # fmt: skip
        assert holiday.isoformat() not in days and (holiday + timedelta(days=1)).isoformat() in days
        with in_clinic(acme):
            job = SmartBookingJob.objects.create(
                patient=world.other_patient,
                request={
                    "specialty": "behavior-analysis",
                    "appointment_type": world.visit.pk,
                    "earliest_date": holiday.isoformat(),
                    "latest_date": (holiday + timedelta(days=7)).isoformat(),
                    "tz": "America/New_York",
                },
            )
            smart_job_run(job.pk)
            job.refresh_from_db()
            assert job.status == "completed", job.error_message
            smart = Appointment.objects.get(pk=job.result["appointments"][0]["id"])
            assert smart.start.astimezone(zone).date() != holiday

        mover.goto(live.url("acme", "/admin/scheduling/board/plan/"))
        mover.select_option("#id_line", str(world.line.pk))
        mover.select_option("#id_appointment_type", str(world.visit.pk))
        mover.select_option("#id_practitioner", str(world.gamma.pk))
        mover.check(f"#id_weekdays input[value='{holiday.weekday()}']")
        mover.fill("#id_at", "09:00")
        mover.fill("#id_first_day", day.isoformat())
        mover.fill("#id_weeks", "3")
        mover.click("input[type=submit]")
        result = mover.locator(".bo-plan-result")
        expect(result).to_contain_text("Booked 2 visits, skipped 1", timeout=EXPECT_MS)
        expect(mover.locator(".bo-plan-skipped")).to_contain_text("Founders' day")
        mover.screenshot(path=str(SCREENSHOTS / "treatment-plan-desktop.png"), full_page=True)
        for page in boards:
            page.context.close()
    for name in ("board-move-desktop", "board-walk-in-phone", "board-holiday-desktop"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000

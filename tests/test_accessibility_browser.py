"""Accessibility in Chromium: axe-core finds no critical or serious violation on any patient
page or the main admin pages (a new one fails this test), and a Dublin in-person visit reads
in Dublin time on a New York browser."""

from datetime import datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from authorizations.tests import factories as auth_factories
from practice.models import ClinicSettings
from scheduling import services
from scheduling.tests import factories as f
from tenants.models import Clinic
from tests.axe import axe_assert, axe_check
from tests.clock import run_instant
from tests.fixtures import in_clinic
from tests.live import in_thread, open_page, save_screenshots

PASSWORD = "a-long-test-password"
pytestmark = pytest.mark.usefixtures("committed")


def _sign_in_patient(page, base: str, email: str) -> None:
    page.goto(f"{base}/signin/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="My appointments")).to_be_visible()


def _sign_in_staff(page, base: str, email: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()


@pytest.fixture
def acme_world(make_user):
    """Acme with a practitioner, a patient with coverage and an authorization, a visit to come
    and one past (its date badge), and staff."""
    acme = Clinic.objects.get(slug="acme")
    user = make_user(acme, "patient", email="pat@example.com", password=PASSWORD)
    staff = make_user(acme, "clinic_admin", email="boss@example.com", password=PASSWORD)
    with in_clinic(acme):
        speech = f.specialty("speech-therapy")
        place = f.location("Midtown")
        maya = f.practitioner(
            name="Dr. Maya Lopez", specialties=(speech,), at=place, hours=((time(7), time(21)),)
        )
        maya.rating_average, maya.rating_count = 4.5, 12
        maya.save()
        code = f.service_code("92507", unit_minutes=None)
        kind = f.appointment_type(maya, minutes=45, code=code)
        patient = f.patient(user=user, first="Pat")
        auth_factories.authorization(patient, code, units=20)
    day = (run_instant() + timedelta(days=9)).date()  # the run's chosen instant
    start = datetime.combine(day, time(10), tzinfo=ZoneInfo("America/New_York"))
    past = datetime.combine(day - timedelta(days=30), time(10), tzinfo=ZoneInfo("America/New_York"))

    def book():
        with in_clinic(acme):
            coming = services.appointment_book(
                patient=patient, practitioner=maya, appointment_type=kind, start=start,
                location=place,
            )  # fmt: skip
            services.appointment_book(
                patient=patient, practitioner=maya, appointment_type=kind, start=past,
                location=place, now=past - timedelta(days=1),
            )  # fmt: skip
            services.appointment_book(
                patient=patient, practitioner=maya, appointment_type=kind,
                start=start + timedelta(days=14), location=place,
            )  # fmt: skip
            return coming

    visit = in_thread(book)
    return {
        "clinic": acme,
        "user": user,
        "staff": staff,
        "patient": patient,
        "maya": maya,
        "kind": kind,
        "place": place,
        "visit": visit,
        "slot": start + timedelta(days=1),
    }


def test_patient_pages_have_no_serious_accessibility_violation(live_servers, acme_world, browser):
    base = live_servers.url("acme")
    page = open_page(browser)
    found = []
    for path in ("/", "/signin/", "/signup/", "/password-reset/"):
        page.goto(f"{base}{path}")
        found.append(axe_check(page))
    _sign_in_patient(page, base, "pat@example.com")
    visit, maya, kind = acme_world["visit"], acme_world["maya"], acme_world["kind"]
    book = urlencode(
        {"practitioner": maya.pk, "type": kind.pk, "start": acme_world["slot"].isoformat()}
    )
    for path in (
        "/appointments/",
        f"/appointments/{visit.pk}/",
        f"/appointments/{visit.pk}/cancel/",
        f"/appointments/{visit.pk}/reschedule/",
        "/practitioners/",
        f"/practitioners/{maya.pk}/?type={kind.pk}",
        f"/book/?{book}",
        "/smart/",
        "/your-data/",
        "/balance/",
    ):
        page.goto(f"{base}{path}")
        expect(page.locator("main")).to_be_visible()
        found.append(axe_check(page))
    page.context.close()
    assert not any(found), "\n".join(filter(None, found))


def test_main_admin_pages_have_no_serious_accessibility_violation(
    live_servers, acme_world, browser
):
    base = live_servers.url("acme")
    page = open_page(browser)
    _sign_in_staff(page, base, "boss@example.com")
    found = []
    visit, patient = acme_world["visit"], acme_world["patient"]
    for path in (
        "/admin/",
        "/admin/scheduling/appointment/",
        f"/admin/scheduling/appointment/{visit.pk}/change/",
        "/admin/practice/patient/",
        f"/admin/practice/patient/{patient.pk}/change/",  # the coverage inputs
        "/admin/authorizations/authorization/",
        "/admin/authorizations/authorization/add/",
        "/admin/practice/clinicsettings/1/change/",
        "/admin/accounts/user/",
        "/admin/scheduling/board/",
    ):
        page.goto(f"{base}{path}")
        expect(page.locator("#content")).to_be_visible()
        found.append(axe_check(page))
    page.context.close()
    assert not any(found), "\n".join(filter(None, found))


def test_a_dublin_visit_reads_in_dublin_time_on_a_new_york_browser(
    live_servers, browser, make_user
):
    globex = Clinic.objects.get(slug="globex")
    user = make_user(globex, "patient", email="aoife@example.com", password=PASSWORD)
    dublin = ZoneInfo("Europe/Dublin")
    with in_clinic(globex):
        ClinicSettings.objects.update_or_create(id=1, defaults={"locale": "en-IE"})
        place = f.location("Dún Laoghaire", tz="Europe/Dublin")
        cardio = f.practitioner(tz="Europe/Dublin", at=place, name="Dr. Siobhan Byrne")
        kind = f.appointment_type(cardio, minutes=30)
        patient = f.patient(user=user, first="Aoife")
    day = (run_instant() + timedelta(days=8)).astimezone(dublin).date()
    start = datetime.combine(day, time(9), tzinfo=dublin)

    def book():
        with in_clinic(globex):
            return services.appointment_book(
                patient=patient, practitioner=cardio, appointment_type=kind, start=start,
                location=place,
            )  # fmt: skip

    visit = in_thread(book)
    page = open_page(browser, timezone_id="America/New_York")
    base = live_servers.url("globex")
    _sign_in_patient(page, base, "aoife@example.com")
    page.reload()  # portal.js has written the browser's zone (New York) by now
    card = page.locator(f'[data-appointment="{visit.pk}"]')
    expect(card).to_contain_text("09:00 – 09:30")
    expect(card).to_contain_text("Dublin time")
    expect(card).to_contain_text(f"{day.day} {day:%B}")
    expect(card).not_to_contain_text("04:00")
    axe_assert(page)
    save_screenshots(page, "dublin-visit-new-york-browser")
    page.get_by_role("link", name=f"{kind.name} with Dr. Siobhan Byrne").click()
    expect(page.locator(".summary")).to_contain_text("09:00 – 09:30")
    expect(page.locator(".summary")).to_contain_text("Dublin time (")
    page.context.close()


def _fits(page, *columns: str) -> None:
    """Nothing scrolls sideways at 1280 px, and each column's header is on screen."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, f"{page.url} is {width}px wide"
    for column in columns:
        box = page.locator(f"#result_list th.column-{column}").bounding_box()
        assert box and box["x"] + box["width"] <= 1280, f"{column} is off screen on {page.url}"


def test_admin_lists_fit_1280_px_soonest_first_with_today_and_this_week(
    live_servers, acme_world, browser
):
    base = live_servers.url("acme")
    page = open_page(browser)  # 1280x800
    _sign_in_staff(page, base, "boss@example.com")
    page.goto(f"{base}/admin/scheduling/appointment/")
    _fits(page, "when", "patient", "status_label", "source", "units")
    # soonest first: the next visit, then the one after, then the past one
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("Booked")
    assert acme_world["visit"].pk == int(
        rows.first.locator("input.action-select").get_attribute("value")
    )
    filters = page.locator("#changelist-filter")
    expect(filters.get_by_role("link", name="Today")).to_be_visible()
    expect(filters.get_by_role("link", name="This week")).to_be_visible()
    save_screenshots(page, "admin-appointments")
    page.goto(f"{base}/admin/authorizations/authorization/")
    _fits(page, "number", "patient", "status", "usage")
    save_screenshots(page, "admin-authorizations")
    page.goto(f"{base}/admin/authorizations/authorization/add/")
    # a searchable picker, not a raw id
    expect(page.locator(".field-patient .select2")).to_be_visible()
    expect(page.locator("#id_patient.vForeignKeyRawIdAdminField")).to_have_count(0)
    page.goto(f"{base}/admin/accounts/user/")
    expect(page.locator("#result_list")).to_contain_text("Clinic admin")
    expect(page.locator("#result_list")).not_to_contain_text("clinic_admin")
    page.context.close()

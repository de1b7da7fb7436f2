"""The Content Security Policy in Chromium (issue 16, part 6): the patient pages, the staff admin,
the schedule board with its live socket, the API docs, two-factor enrolment and the platform's
page work under it with no violation (the `_no_csp_violations` fixture of tests/live.py fails a
test on any), and a violation is caught."""

from django_tenants.utils import schema_context
from playwright.sync_api import expect

from accounts.models import User
from practice.models import ClinicSettings
from scheduling.tests import factories as scheduling_factories
from tests.fixtures import in_clinic
from tests.live import CSP_VIOLATIONS, open_page, save_screenshots

PASSWORD = "a-long-test-password"


def test_an_injected_inline_script_is_blocked_and_caught(live_servers, browser, committed):
    page = open_page(browser)
    page.goto(live_servers.url("acme", "/"))
    # What an HTML injection would add: an inline script (the DOM way, as a parser would).
    page.evaluate(
        """() => { const script = document.createElement("script");
                   script.textContent = "window.injected = true;";
                   document.head.appendChild(script); }"""
    )
    # Chromium's own report and the page's securitypolicyviolation event, both recorded.
    for _ in range(50):
        if sum("script-src" in violation for violation in CSP_VIOLATIONS) >= 2:
            break
        page.wait_for_timeout(100)
    assert page.evaluate("window.injected === undefined")  # it never ran
    page.context.close()
    caught = list(CSP_VIOLATIONS)
    CSP_VIOLATIONS.clear()  # expected here: the check itself is what this test proves
    assert sum("script-src" in violation for violation in caught) == 2, caught


def test_patient_pages_and_the_platform_and_its_admin_load_without_a_violation(
    live_servers, browser, committed
):
    page = open_page(browser)
    for path in ("/", "/practitioners/", "/signin/", "/signup/", "/password-reset/", "/nowhere/"):
        page.goto(live_servers.url("acme", path))
        expect(page.locator("body")).to_be_visible()
    platform = f"http://localhost:{live_servers.http_port}"
    page.goto(f"{platform}/")  # the platform's own page
    expect(page.locator("h1")).to_have_text("Clinic")
    with schema_context("public"):  # a platform operator
        if not User.objects.filter(email="ops@platform.test").exists():
            User.objects.create_superuser("ops@platform.test", PASSWORD)
    _sign_in(page, f"{platform}/admin/login/", "ops@platform.test")
    for path in ("/admin/", "/admin/tenants/clinic/", "/admin/tenants/clinic/add/"):
        page.goto(f"{platform}{path}")
        expect(page.locator("#content")).to_be_visible()
    page.context.close()


def test_the_admin_board_and_api_docs_work_without_a_violation(
    live_servers, browser, committed_acme, make_user
):
    admin = make_user(committed_acme, "clinic_admin")
    page = open_page(browser)
    _sign_in(page, live_servers.url("acme", "/admin/login/"), admin.email)
    expect(page.locator("#site-name")).to_be_visible()
    for path in (
        "/admin/",
        "/admin/practice/patient/",
        "/admin/scheduling/appointment/",
        "/admin/accounts/user/",
        "/admin/practice/clinicsettings/",
        "/admin/audit/auditevent/",  # who saw which record
        "/admin/scheduling/timeoff/add/",
    ):
        page.goto(live_servers.url("acme", path))
        expect(page.locator("#content")).to_be_visible()
    # The date widgets' script (Django's DateTimeShortcuts) draws its calendar under the policy.
    page.locator(".datetimeshortcuts a").first.click()
    # The board opens its socket on the websocket server's own origin (connect-src).
    page.goto(live_servers.url("acme", "/admin/scheduling/board/"))
    expect(page.locator("#sb-live")).to_have_attribute("data-state", "live", timeout=15_000)
    # Swagger UI starts from a script file (SpectacularSwaggerSplitView), not an inline one.
    page.goto(live_servers.url("acme", "/api/docs/"))
    expect(page.locator(".swagger-ui .info")).to_be_visible(timeout=15_000)

    # Two-factor enrolment, once the clinic asks for it: the QR code is inline SVG.
    with in_clinic(committed_acme):
        ClinicSettings.objects.update_or_create(id=1, defaults={"require_staff_two_factor": True})
    page.goto(live_servers.url("acme", "/admin/"))  # sent to enrol first
    expect(page.locator(".bo-qr svg")).to_be_visible()
    page.context.close()


def test_a_clinic_admin_exports_and_erases_a_patient_without_a_violation(
    live_servers, browser, committed_acme, make_user
):
    """practice.rights' admin pages: the patient's data rights links, the erase page (a
    reason, a confirmation) and the erasure requests list."""
    admin = make_user(committed_acme, "clinic_admin")
    with in_clinic(committed_acme):
        patient = scheduling_factories.patient(first="Eve")
    page = open_page(browser)
    _sign_in(page, live_servers.url("acme", "/admin/login/"), admin.email)
    page.goto(live_servers.url("acme", f"/admin/practice/patient/{patient.pk}/change/"))
    with page.expect_download() as download:
        page.get_by_role("link", name="Download data (PDF)").click()
    assert open(download.value.path(), "rb").read(4) == b"%PDF"
    page.get_by_role("link", name="Erase (anonymise)…").click()
    page.get_by_label("Reason").fill("The patient's written request")
    page.get_by_label("I understand").check()
    save_screenshots(page, "admin-erase-patient")
    page.get_by_role("button", name="Erase this patient").click()
    expect(page.get_by_text("The patient is erased.")).to_be_visible()
    page.goto(live_servers.url("acme", "/admin/practice/erasurerequest/"))
    expect(page.get_by_text("The patient's written request")).to_be_visible()
    page.context.close()


def _sign_in(page, url: str, email: str) -> None:
    page.goto(url)
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

"""Two-factor for staff in Chromium against the live servers, under the Content Security
Policy (issue 16): a front desk member signs in with their password, enrols an authenticator
app from the secret the page shows, reaches the admin, signs out everywhere from the user
tools, and next time enters a code after the password. Codes are computed from the secret with
django-otp's TOTP at the run's clock, which the live servers share (tests/clock.py)."""

from base64 import b32decode

from django_otp.oath import TOTP
from playwright.sync_api import expect

from practice.models import ClinicSettings
from tests.fixtures import in_clinic
from tests.live import open_page

PASSWORD = "a-long-test-password"


def _code(secret: str, last: str = "") -> str:
    """The app's code now; the next step's when `last` was just used (a code works once)."""
    totp = TOTP(b32decode(secret))
    code = f"{totp.token():06d}"
    if code == last:
        totp.drift = 1
        code = f"{totp.token():06d}"
    return code


def _password(page, live_servers, email: str) -> None:
    page.goto(live_servers.url("acme", "/admin/login/"))
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")


def test_staff_enrol_verify_and_sign_out_everywhere(
    live_servers, browser, committed_acme, make_user
):
    with in_clinic(committed_acme):
        ClinicSettings.objects.update_or_create(id=1, defaults={"require_staff_two_factor": True})
    desk = make_user(committed_acme, "front_desk")
    page = open_page(browser)

    _password(page, live_servers, desk.email)
    expect(page.locator("h1")).to_have_text("Enrol an authenticator app")
    expect(page.locator(".bo-qr svg")).to_be_visible()
    secret = page.locator(".bo-secret").inner_text().strip()
    page.get_by_role("textbox", name="Code").fill("000000")
    page.get_by_role("button", name="Enrol").click()
    expect(page.locator(".errorlist")).to_contain_text("wrong")
    page.wait_for_timeout(1500)  # django-otp answers a second try after a wrong code in 1 s
    enrolled = _code(secret)
    page.get_by_role("textbox", name="Code").fill(enrolled)
    page.get_by_role("button", name="Enrol").click()
    expect(page.locator(".messagelist")).to_contain_text("enrolled")
    page.goto(live_servers.url("acme", "/admin/practice/patient/"))
    expect(page.locator("#changelist")).to_be_visible()

    page.get_by_role("button", name="Sign out everywhere").click()
    expect(page.locator(".messagelist")).to_contain_text("signed out on every device")
    page.goto(live_servers.url("acme", "/admin/"))
    expect(page).to_have_url(live_servers.url("acme", "/admin/login/?next=/admin/"))

    _password(page, live_servers, desk.email)
    expect(page.locator("h1")).to_have_text("Enter your code")
    expect(page.locator(".bo-qr")).to_have_count(0)  # the secret is shown once, at enrolment
    page.get_by_role("textbox", name="Code").fill(_code(secret, last=enrolled))
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("#site-name")).to_be_visible()
    expect(page).to_have_url(live_servers.url("acme", "/admin/"))
    page.context.close()

"""Issue 18 in Chromium: a new patient of an ABA clinic signs up with their insurance, is told
before any slot that the visit needs an authorization, requests it; the front desk approves it
from the queue in the admin (which creates the authorization); the patient then books. Live
servers on committed data, CSP watched, screenshots at desktop and phone sizes."""

import io
from datetime import time, timedelta

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from PIL import Image
from playwright.sync_api import expect

from accounts.models import User
from authorizations.models import Authorization, AuthorizationRequest
from practice.models import ClinicSettings, ConsentText, Coverage, Payer
from scheduling.models import Appointment
from scheduling.tests import factories as f
from tenants.models import Clinic
from tests.fixtures import in_clinic
from tests.live import open_page, save_screenshots

from .conftest import PASSWORD, build_world

pytestmark = pytest.mark.usefixtures("committed")


@pytest.fixture
def aba(committed, make_user):
    """Acme as an ABA clinic: parent coaching billed as 97156, which payers authorize first;
    open 08:00-20:00 every day; a payer, the consents, the front desk's number."""
    acme = Clinic.objects.get(slug="acme")
    world = build_world(acme, make_user)
    desk = make_user(acme, "front_desk", email="desk@acme.test", password=PASSWORD)
    with in_clinic(acme):
        code = f.service_code("97156", 15)
        code.requires_authorization = True
        code.save()
        world.visit.name = "Parent coaching"
        world.visit.service_code = code
        world.visit.save()
        for practitioner in (world.maya, world.sam):
            practitioner.working_hours.all().delete()
            for weekday in range(7):
                practitioner.working_hours.create(
                    weekday=weekday, start_time=time(8), end_time=time(20), location=world.location
                )
        Payer.objects.create(name="Hudson Valley Health Plan", edi_payer_id="HVHP1")
        for kind, title in (("treatment", "Consent to treatment"), ("privacy", "Privacy notice")):
            ConsentText.objects.create(kind=kind, version=1, title=title, body=f"{title}.")
        ClinicSettings.objects.update_or_create(
            id=1, defaults={"phone": "+1 212 555 0100", "email": "frontdesk@acme.example"}
        )
    world.desk = desk
    return world


def card_photo() -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 200), (30, 90, 160)).save(buffer, "PNG")
    return {"name": "card-front.png", "mimeType": "image/png", "buffer": buffer.getvalue()}


def test_a_new_aba_patient_signs_up_requests_an_authorization_and_books_once_approved(
    live_servers, aba, browser
):
    base = live_servers.url("acme")
    page = open_page(browser)

    # Sign up with insurance: payer, member id, group, a photo of the card; consents signed.
    page.goto(f"{base}/signup/")
    page.get_by_label("First name").fill("Nora")
    page.get_by_label("Last name").fill("Quinn")
    page.get_by_label("Email").fill("nora@example.com")
    page.get_by_label("Date of birth").fill("1988-04-02")
    page.get_by_label("Password", exact=True).fill("correct horse battery staple")
    page.get_by_label("Password again").fill("correct horse battery staple")
    page.get_by_label("Insurance company").select_option(label="Hudson Valley Health Plan")
    page.get_by_label("Member id").fill("HV123456")
    page.get_by_label("Group number (optional)").fill("GRP-9")
    page.get_by_label("Photo of the card, front (optional)").set_input_files(card_photo())
    page.get_by_label("I have read and accept: Consent to treatment").check()
    page.get_by_label("I have read and accept: Privacy notice").check()
    page.get_by_label("Sign by typing your full name").fill("Nora Quinn")
    save_screenshots(page, "intake-signup")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("Check your email to finish signing up")).to_be_visible()
    with in_clinic(aba.clinic):
        nora = User.objects.get(email="nora@example.com")
        coverage = Coverage.objects.get(patient__user=nora)
        assert (coverage.member_id, coverage.group_number) == ("HV123456", "GRP-9")
        assert coverage.card_front
        uid = urlsafe_base64_encode(force_bytes(nora.pk))
        token = default_token_generator.make_token(nora)
    page.goto(f"{base}/signup/{uid}/{token}/")
    expect(page.get_by_text("Welcome, Nora!")).to_be_visible()

    # Before any slot: what is needed, and the request.
    page.goto(f"{base}/practitioners/{aba.maya.pk}/?type={aba.visit.pk}")
    needed = page.locator("[data-authorization-needed]")
    expect(needed).to_contain_text("This visit needs an authorization from your insurer first")
    expect(page.locator("a.slot")).to_have_count(0)
    save_screenshots(page, "authorization-needed")
    page.get_by_label("Anything the clinic should know (optional)").fill("Diagnosis: autism, age 6")
    page.get_by_role("button", name="Request an assessment / authorization").click()
    expect(page.get_by_text("Your request is with the clinic.")).to_be_visible()
    expect(page.locator('[data-request-status="pending"]')).to_contain_text(
        "Waiting for the clinic"
    )
    save_screenshots(page, "authorization-requested")

    # The front desk works the queue in the admin: approve creates the authorization.
    desk = open_page(browser)
    desk.goto(f"{base}/admin/login/")
    desk.fill("#id_username", aba.desk.email)
    desk.fill("#id_password", PASSWORD)
    desk.click("input[type=submit]")
    desk.goto(f"{base}/admin/authorizations/authorizationrequest/")
    expect(desk.locator("#result_list")).to_contain_text("Parent coaching")
    save_screenshots(desk, "admin-authorization-queue")
    desk.get_by_role("link", name="Approve or decline…").click()
    expect(desk.locator("#content-main")).to_contain_text("Diagnosis: autism, age 6")
    expect(desk.locator("#content-main")).to_contain_text("member HV123456")
    today = timezone.localdate()
    desk.get_by_label("Authorization number").fill("PA-2026-118")
    desk.get_by_label("Start date").fill(today.isoformat())
    desk.get_by_label("End date").fill((today + timedelta(days=120)).isoformat())
    desk.get_by_label("Units authorized").fill("96")
    save_screenshots(desk, "admin-authorization-decide")
    desk.get_by_role("button", name="Approve and create the authorization").click()
    expect(desk.locator(".messagelist")).to_contain_text("Approved: authorization PA-2026-118")
    desk.context.close()
    with in_clinic(aba.clinic):
        request = AuthorizationRequest.objects.get(patient__user=nora)
        assert request.status == "approved"
        assert Authorization.objects.get(patient__user=nora).number == "PA-2026-118"

    # The patient sees it approved, and books.
    page.goto(f"{base}/appointments/")
    expect(page.locator('[data-request-status="approved"]')).to_contain_text(
        "Authorization PA-2026-118: you can book now."
    )
    page.goto(f"{base}/practitioners/{aba.maya.pk}/?type={aba.visit.pk}")
    expect(page.locator("[data-authorization-needed]")).to_have_count(0)
    expect(page.locator("[data-change-policy]")).to_contain_text("+1 212 555 0100")
    page.get_by_role("link", name="Next week").click()
    page.locator("a.slot").first.click()
    expect(page.get_by_role("heading", name="Confirm your booking")).to_be_visible()
    expect(page.locator("[data-change-policy]")).to_contain_text(
        "You can cancel or move this visit online until"
    )
    save_screenshots(page, "authorization-confirm")
    page.get_by_role("button", name="Confirm booking").click()
    expect(page.get_by_role("heading", name="You're booked!")).to_be_visible()
    save_screenshots(page, "authorization-booked")
    with in_clinic(aba.clinic):
        booked = Appointment.objects.get(patient__user=nora)
        assert booked.unit_reservation is not None
        assert booked.unit_reservation.line.authorization.number == "PA-2026-118"
    page.context.close()

"""In Chromium: a patient pays their balance online from the balance page (the processor
double), sees a receipt, and owes nothing after; a declined card says so and takes nothing."""

from datetime import date
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from billing import ledger
from billing.models import Charge, Payment
from billing.tests import factories
from scheduling.tests import factories as f
from tenants.models import Clinic
from tests.fixtures import in_clinic
from tests.live import in_thread, open_page

PASSWORD = "a-long-test-password"
pytestmark = pytest.mark.usefixtures("committed")


def test_a_patient_pays_their_balance_online(live_servers, browser, make_user):
    acme = Clinic.objects.get(slug="acme")
    user = make_user(acme, "patient", email="payer@example.com", password=PASSWORD)

    def owing() -> Charge:
        with in_clinic(acme):
            patient = f.patient(user=user, first="Paige")
            visit = factories.billable_visit(patient=patient)
            charge = Charge.objects.create(
                appointment=visit.appointment, patient=patient, episode=visit.episode,
                service_code=visit.code, service_date=date(2026, 3, 9), units=1,
                place_of_service="11", diagnosis_pointers=[1], amount=Decimal("45.00"),
                rendering=visit.practitioner, status=Charge.Status.SELF_PAY,
            )  # fmt: skip
            ledger.charge_post(charge=charge)
            return charge

    charge = in_thread(owing)
    base = live_servers.url("acme")
    page = open_page(browser)
    page.goto(f"{base}/signin/")
    page.get_by_label("Email").fill("payer@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="My appointments")).to_be_visible()
    page.goto(f"{base}/balance/")
    expect(page.get_by_test_id("you-owe")).to_have_text("$45.00")
    page.get_by_role("link", name="Pay now").click()
    expect(page.get_by_role("heading", name="Pay your balance")).to_be_visible()
    # a declined card first: said on the form, nothing taken
    page.get_by_label("Card").select_option("tok_decline")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("alert").filter(has_text="declined")).to_be_visible()
    page.get_by_label("Card").select_option("tok_visa")
    expect(page.get_by_label("Amount")).to_have_value("45.00")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    expect(page.get_by_test_id("paid-amount")).to_have_text("$45.00")
    expect(page.get_by_test_id("you-owe-after")).to_have_text("$0.00")
    page.goto(f"{base}/balance/")
    expect(page.get_by_test_id("you-owe")).to_have_text("$0.00")
    expect(page.get_by_role("link", name="Pay now")).to_have_count(0)
    page.context.close()

    def check() -> None:
        with in_clinic(acme):
            statuses = sorted(
                Payment.objects.filter(patient=charge.patient).values_list("status", flat=True)
            )
            assert statuses == ["failed", "succeeded"]
            assert ledger.charge_balance(charge=charge).patient == Decimal(0)

    in_thread(check)

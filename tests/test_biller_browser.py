"""A biller in a real browser (Playwright driving Debian's Chromium, under the Content Security
Policy) against live servers on the test database: completed visits are charged (billing's
charging service), claimed, and paid by an 835 posted through billing's posting service (one
line denied CO-197); the biller signs in, lands on the admin's Billing section, reads the A/R
aging by payer and by patient, finds the denial on the worklist in plain English and follows it
to the authorization, and downloads the aging as CSV. Screenshots go to artifacts/screenshots/
(git-ignored).

The second test goes the whole way in the admin: completed visits charged by billing's charging
service and batched into draft claims, then the biller scrubs and submits them from the claims
list, uploads the payer's 835 on the remittances page, and finds the denial on the worklist."""

from decimal import Decimal

from authorizations.models import Authorization
from backoffice.tests.live_board import SCREENSHOTS, chromium_browser, live_servers
from billing import reports
from billing.charges import charges_create_for_visit
from billing.models import Claim, ClaimLine
from billing.posting import remittance_post
from billing.tests import factories
from demo.billing import claim_payment, era, line_paid
from practice.models import Patient
from tests.fixtures import in_clinic
from tests.live import csp_watch

PASSWORD = "biller-browser-pass-1"
EXPECT_MS = 10_000


def _billed_and_paid():
    """Two completed visits of one patient, charged, on one submitted claim; an 835 pays the
    first line and denies the second (CO-197, N54). Returns the denied visit and the claim."""
    first = factories.billable_visit()
    second = factories.billable_visit(patient=first.patient, code=first.code)
    charges = [
        *charges_create_for_visit(appointment=first.appointment),
        *charges_create_for_visit(appointment=second.appointment),
    ]
    one = charges[0]
    claim = Claim.objects.create(
        patient=one.patient, payer=one.payer, coverage=one.coverage, episode=one.episode,
        rendering=one.rendering, total_charge=sum((c.amount for c in charges), Decimal(0)),
    )  # fmt: skip
    lines = [
        ClaimLine.objects.create(claim=claim, charge=c, number=n, amount=c.amount, units=c.units)
        for n, c in enumerate(charges, start=1)
    ]
    Claim.objects.filter(pk=claim.pk).update(status="submitted")
    claim.refresh_from_db()
    from billing.x12 import remittance as x12

    denied = x12.ServiceLine(
        position=0, qualifier="HC", code=lines[1].charge.service_code.code, modifiers=(),
        charge=lines[1].amount, paid=Decimal(0), units=Decimal(lines[1].units),
        service_date=lines[1].charge.service_date, reference=str(lines[1].pk),
        adjustments=(x12.Adjustment("CO", "197", lines[1].amount),), remarks=("N54",),
    )  # fmt: skip
    paid = line_paid(lines[0], rate=Decimal("0.80"))
    remittance_post(text=era([claim_payment(claim, [paid, denied])], payer=one.payer, trace="T1"))
    return second, claim


def test_a_biller_reads_the_ar_and_follows_a_denial_to_its_authorization(
    committed_acme, make_user, monkeypatch
):
    from playwright.sync_api import expect

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    acme = committed_acme
    biller = make_user(acme, "biller", email="bill@acme.test", password=PASSWORD)
    with in_clinic(acme):
        visit, claim = _billed_and_paid()
        claim.refresh_from_db()
        assert claim.status == Claim.Status.PARTIALLY_PAID
        [denial] = reports.denials()
        authorization = Authorization.objects.get(pk=denial.authorization_id)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with live_servers() as live, chromium_browser() as browser:
        context = browser.new_context(
            viewport={"width": 1280, "height": 800}, accept_downloads=True
        )
        csp_watch(context)
        page = context.new_page()
        page.goto(live.url("acme", "/admin/login/?next=/admin/"))
        page.fill("#id_username", biller.email)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        expect(page.locator("h2.bo-section", has_text="Billing")).to_be_visible(timeout=EXPECT_MS)
        page.screenshot(path=str(SCREENSHOTS / "biller-admin-index.png"))

        page.locator(".bo-card", has_text="A/R aging").click()
        expect(page.locator("h1", has_text="A/R aging")).to_be_visible(timeout=EXPECT_MS)
        expect(page.locator("tfoot")).to_contain_text("Total")
        # the payer paid its share: what is left is the patient's coinsurance
        expect(page.locator("#result_list")).to_contain_text("Patients (their own share)")
        page.select_option("select[name=by]", "patient")
        page.click("form.bo-report-filters button[type=submit]")  # not the header's log out
        expect(page.locator("#result_list")).to_contain_text(visit.patient.full_name)
        page.screenshot(path=str(SCREENSHOTS / "biller-ar-aging.png"))
        with page.expect_download() as download:
            page.click("text=Download CSV")
        assert download.value.suggested_filename == "ar-aging.csv"
        content = open(download.value.path(), encoding="utf-8").read()  # noqa: PTH123
        assert content.splitlines()[0].startswith("patient_id,patient,0-30")

        page.click("text=Denials")
        worklist = page.locator("#result_list")
        expect(worklist).to_contain_text("CO-197", timeout=EXPECT_MS)
        expect(worklist).to_contain_text("authorization absent")
        page.screenshot(path=str(SCREENSHOTS / "biller-denials.png"))
        worklist.locator("a", has_text=authorization.number).click()
        change = f"/admin/authorizations/authorization/{authorization.pk}/change/"
        expect(page).to_have_url(live.url("acme", change), timeout=EXPECT_MS)
        context.close()


def test_a_biller_submits_claims_and_posts_their_835_in_the_admin(
    committed_acme, make_user, monkeypatch
):
    """From charged, completed visits (billing's charging service) to submitted claims and a
    posted remittance, all in the admin: scrub and submit from the claims list (b2's actions),
    upload the payer's 835 (b3's upload page), then the denial is on the worklist."""
    from playwright.sync_api import expect

    from billing import claims as claim_services
    from billing.x12 import remittance as x12

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    acme = committed_acme
    biller = make_user(acme, "biller", email="bill2@acme.test", password=PASSWORD)
    with in_clinic(acme):
        factories.billing_profile()
        first = factories.billable_visit()
        second = factories.billable_visit()
        for visit in (first, second):  # payers need the subscriber's address
            Patient.objects.filter(pk=visit.patient.pk).update(
                address_line1="1 Main St", city="New York", state="NY", postal_code="10001"
            )
        charged = [
            *charges_create_for_visit(appointment=first.appointment),
            *charges_create_for_visit(appointment=second.appointment),
        ]
        claims = claim_services.claims_build(charges=[c.pk for c in charged])
        assert len(claims) == 2
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with live_servers() as live, chromium_browser() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        csp_watch(context)
        page = context.new_page()
        page.goto(live.url("acme", "/admin/login/?next=/admin/billing/claim/"))
        page.fill("#id_username", biller.email)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        for action in ("scrub", "submit"):
            for claim in claims:
                page.check(f'input[name="_selected_action"][value="{claim.pk}"]')
            page.select_option('select[name="action"]', action)
            page.click('button[name="index"]')
            expect(page.locator(".messagelist")).to_be_visible(timeout=EXPECT_MS)
        expect(page.locator(".messagelist")).to_contain_text("claim(s) sent")
        page.screenshot(path=str(SCREENSHOTS / "biller-claims-submitted.png"))
        with in_clinic(acme):
            sent = list(Claim.objects.filter(pk__in=[c.pk for c in claims]).order_by("pk"))
            assert {c.status for c in sent} == {"submitted"}
            paid_line = sent[0].lines.select_related("charge__service_code").get()
            denied_line = sent[1].lines.select_related("charge__service_code").get()
            denied = x12.ServiceLine(
                position=0, qualifier="HC", code=denied_line.charge.service_code.code,
                modifiers=tuple(m for m in denied_line.charge.modifiers.split(":") if m),
                charge=denied_line.amount, paid=Decimal(0), units=Decimal(denied_line.units),
                service_date=denied_line.charge.service_date, reference=str(denied_line.pk),
                adjustments=(x12.Adjustment("CO", "197", denied_line.amount),), remarks=("N54",),
            )  # fmt: skip
            text = era(
                [
                    claim_payment(sent[0], [line_paid(paid_line, rate=Decimal("0.80"))]),
                    claim_payment(sent[1], [denied]),
                ],
                payer=sent[0].payer,
                trace="BROWSER1",
            )

        page.goto(live.url("acme", "/admin/billing/remittance/add/"))
        page.fill('textarea[name="x12"]', text)
        page.click('input[value="Post the remittance"]')
        expect(page.locator(".messagelist")).to_contain_text("Posted", timeout=EXPECT_MS)
        page.screenshot(path=str(SCREENSHOTS / "biller-835-posted.png"))
        with in_clinic(acme):
            statuses = dict(
                Claim.objects.filter(pk__in=[c.pk for c in sent]).values_list("pk", "status")
            )
        assert statuses == {sent[0].pk: "paid", sent[1].pk: "denied"}

        page.goto(live.url("acme", "/admin/billing/reports/denials/"))
        expect(page.locator("#result_list")).to_contain_text("CO-197", timeout=EXPECT_MS)
        expect(page.locator("#result_list")).to_contain_text(sent[1].control_number)
        context.close()

"""The claims admin: a biller scrubs and submits from the claims list, downloads the 837P,
uploads a 999 that moves the claims, appeals a denied claim; lines are read-only once sent;
the front desk has no claims pages."""

from billing import claims as services
from billing.models import Claim, Submission
from billing.tests import factories as bf
from billing.tests.test_claims import ack_999
from billing.x12.validate import validate
from clinic.permissions import BILLER, FRONT_DESK
from tests.fixtures import in_clinic, session_client

CLAIMS = "/admin/billing/claim/"


def _draft(acme) -> Claim:
    with in_clinic(acme):
        bf.billing_profile()
        made = bf.charge(bf.billable_visit())
        [claim] = services.claims_build(charges=[made.pk])
        return claim


def _act(client, action: str, *claims: Claim):
    return client.post(
        CLAIMS, {"action": action, "_selected_action": [c.pk for c in claims]}, follow=False
    )


def test_a_biller_scrubs_submits_downloads_and_applies_a_999_in_the_admin(acme, make_user):
    claim = _draft(acme)
    admin = session_client(acme, make_user(acme, BILLER))
    page = admin.get(CLAIMS)
    assert page.status_code == 200 and claim.control_number in page.content.decode()
    assert "Upload a 999 or 277CA" in page.content.decode()
    assert _act(admin, "scrub", claim).status_code == 302
    with in_clinic(acme):
        assert Claim.objects.get(pk=claim.pk).status == "ready"
    assert _act(admin, "submit", claim).status_code == 302
    with in_clinic(acme):
        submission = Submission.objects.get()
        assert Claim.objects.get(pk=claim.pk).status == "submitted"
    download = admin.get(f"/admin/billing/submission/{submission.pk}/x12/")
    assert download.status_code == 200 and validate(download.content.decode()).ok
    assert _act(admin, "download_837p", claim).content == download.content
    # the sent claim's page shows its lines read-only
    change = admin.get(f"{CLAIMS}{claim.pk}/change/").content.decode()
    assert 'name="lines-0-units"' not in change
    upload = "/admin/billing/claim/acknowledgements/"
    assert admin.get(upload).status_code == 200
    refused = admin.post(upload, {"text": ack_999(submission).replace("IK5*A", "IK5*Q")})
    assert refused.status_code == 200 and "IK5" in refused.content.decode()
    moved = admin.post(upload, {"text": ack_999(submission)})
    assert moved.status_code == 302
    with in_clinic(acme):
        assert Claim.objects.get(pk=claim.pk).status == "accepted"
        Claim.objects.filter(pk=claim.pk).update(status="denied")
    appeal = f"{CLAIMS}{claim.pk}/appeal/"
    assert admin.post(appeal, {"note": "Authorization AUTH on file"}).status_code == 302
    with in_clinic(acme):
        claim = Claim.objects.get(pk=claim.pk)
        assert (claim.status, claim.status_reason) == ("appealed", "Authorization AUTH on file")


def test_a_draft_claims_lines_are_edited_in_the_admin_and_findings_shown(acme, make_user):
    claim = _draft(acme)
    admin = session_client(acme, make_user(acme, BILLER))
    page = admin.get(f"{CLAIMS}{claim.pk}/change/").content.decode()
    assert 'name="lines-0-units"' in page
    with in_clinic(acme):
        line = claim.lines.get()
        Claim.objects.filter(pk=claim.pk).update(
            findings=[{"code": "x", "field": "lines[0].units", "location": "2400 SV104",
                       "message": "Bill fewer units."}]
        )  # fmt: skip
    assert "Bill fewer units." in admin.get(f"{CLAIMS}{claim.pk}/change/").content.decode()
    saved = admin.post(
        f"{CLAIMS}{claim.pk}/change/",
        {
            "lines-TOTAL_FORMS": "1", "lines-INITIAL_FORMS": "1", "lines-MIN_NUM_FORMS": "0",
            "lines-MAX_NUM_FORMS": "1000", "lines-0-id": str(line.pk),
            "lines-0-claim": str(claim.pk), "lines-0-units": "3", "lines-0-amount": "150.00",
        },
    )  # fmt: skip
    assert saved.status_code == 302, saved.content.decode()[:2000]
    with in_clinic(acme):
        claim = Claim.objects.get(pk=claim.pk)
        assert (claim.total_charge, claim.lines.get().units) == (150, 3)
        assert (claim.status, claim.findings) == ("draft", [])


def test_the_front_desk_has_no_claims_pages(acme, make_user):
    claim = _draft(acme)
    desk = session_client(acme, make_user(acme, FRONT_DESK))
    assert desk.get(CLAIMS).status_code == 403
    assert desk.get("/admin/billing/claim/acknowledgements/").status_code == 403
    assert desk.get(f"{CLAIMS}{claim.pk}/appeal/").status_code == 403

"""The claims API: build, read, scrub, submit, download the 837P, refuse edits once sent,
acknowledgements; who may do what, and one clinic's billers see nothing of another's."""

from billing import claims as services
from billing.models import Claim, Submission
from billing.tests import factories as bf
from billing.tests.test_claims import ack_999
from billing.x12.validate import validate
from clinic.permissions import BILLER, FRONT_DESK, INTEGRATOR
from scheduling.tests import factories as f
from tests.fixtures import in_clinic

CLAIMS = "/api/v1/claims/"


def _charge(acme, units: int = 4, **visit):
    with in_clinic(acme):
        bf.billing_profile()
        return bf.charge(bf.billable_visit(**visit), units=units)


def test_a_biller_builds_scrubs_submits_and_downloads_the_837p(acme, make_user, client_for):
    charge = _charge(acme)
    api = client_for(acme, make_user(acme, BILLER))
    built = api.post(CLAIMS, {"charges": [charge.pk]}, content_type="application/json")
    assert built.status_code == 201, built.json()
    [claim] = built.json()["claims"]
    assert (claim["status"], claim["total_charge"]) == ("draft", str(charge.amount))
    listed = api.get(CLAIMS, {"status": "draft", "payer": charge.payer_id}).json()
    assert [c["id"] for c in listed["results"]] == [claim["id"]]
    assert api.get(CLAIMS, {"status": "submitted"}).json()["results"] == []
    scrubbed = api.post(f"{CLAIMS}{claim['id']}/scrub/")
    assert scrubbed.status_code == 200 and scrubbed.json()["status"] == "ready"
    detail = api.get(f"{CLAIMS}{claim['id']}/").json()
    assert [line["charge"] for line in detail["lines"]] == [charge.pk]
    assert detail["lines"][0]["line_ref"] == str(detail["lines"][0]["id"])
    assert api.get(f"{CLAIMS}{claim['id']}/x12/").status_code == 409  # not sent yet
    sent = api.post(f"{CLAIMS}{claim['id']}/submit/")
    assert sent.status_code == 201, sent.json()
    assert sent.json()["claims"] == [claim["id"]]
    x12 = api.get(f"{CLAIMS}{claim['id']}/x12/")
    assert x12.status_code == 200 and x12["Content-Type"].startswith("application/edi-x12")
    text = x12.content.decode()
    assert validate(text).ok and f"CLM*C{claim['id']}*" in text
    assert f"*{sent.json()['id']:09d}*" in text  # ISA13
    # never edited once sent
    line = detail["lines"][0]["id"]
    edit = api.patch(
        f"{CLAIMS}{claim['id']}/", {"lines": [{"id": line, "units": 1}]},
        content_type="application/json",
    )  # fmt: skip
    assert (edit.status_code, edit.json()["code"]) == (409, "claim-not-editable")
    again = api.post(f"{CLAIMS}{claim['id']}/submit/")
    assert (again.status_code, again.json()["code"]) == (409, "claim-not-editable")
    with in_clinic(acme):
        assert Claim.objects.get().lines.get().units == charge.units


def test_submitting_a_claim_with_findings_is_a_400_listing_each_field_and_fix(
    acme, make_user, client_for
):
    charge = _charge(acme, units_authorized=4, units=6)
    api = client_for(acme, make_user(acme, BILLER))
    [claim] = api.post(CLAIMS, {"charges": [charge.pk]}, content_type="application/json").json()[
        "claims"
    ]
    refused = api.post(
        f"{CLAIMS}submit/", {"claims": [claim["id"]]}, content_type="application/json"
    )
    assert (refused.status_code, refused.json()["code"]) == (400, "claim-findings")
    [finding] = refused.json()["findings"]
    assert finding["code"] == "units-exceed-authorization"
    assert (finding["claim"], finding["field"]) == (claim["id"], "lines")
    assert "left" in finding["message"]
    assert api.get(f"{CLAIMS}{claim['id']}/").json()["status"] == "draft"
    unknown = api.post(f"{CLAIMS}submit/", {"claims": [10**9]}, content_type="application/json")
    assert unknown.status_code == 400 and "claims" in unknown.json()["errors"]
    bad = api.post(CLAIMS, {"charges": ["x"]}, content_type="application/json")
    assert bad.status_code == 400 and "charges.0" in bad.json()["errors"]
    nothing = api.post(CLAIMS, {"charges": [charge.pk]}, content_type="application/json")
    assert (nothing.status_code, nothing.json()["code"]) == (400, "nothing-to-bill")


def test_acknowledgements_move_claims_and_a_malformed_file_is_a_400_naming_the_segment(
    acme, make_user, client_for
):
    charge = _charge(acme)
    api = client_for(acme, make_user(acme, BILLER))
    [claim] = api.post(CLAIMS, {"charges": [charge.pk]}, content_type="application/json").json()[
        "claims"
    ]
    api.post(f"{CLAIMS}{claim['id']}/scrub/")
    submission = api.post(f"{CLAIMS}{claim['id']}/submit/").json()
    with in_clinic(acme):
        text = ack_999(Submission.objects.get(pk=submission["id"]), "A")
    broken = api.post(
        "/api/v1/acknowledgements/", {"x12": text.replace("IK5*A", "IK5*Q")},
        content_type="application/json",
    )  # fmt: skip
    assert (broken.status_code, broken.json()["code"]) == (400, "x12-refused")
    assert any(f["segment"] == "IK5" for f in broken.json()["findings"])
    assert api.get(f"{CLAIMS}{claim['id']}/").json()["status"] == "submitted"
    moved = api.post("/api/v1/acknowledgements/", {"x12": text}, content_type="application/json")
    assert moved.status_code == 200, moved.json()
    assert moved.json()["kind"] == "999"
    assert [(c["id"], c["status"]) for c in moved.json()["claims"]] == [(claim["id"], "accepted")]


def test_the_front_desk_cannot_submit_and_integrators_only_read(acme, make_user, client_for):
    charge = _charge(acme)
    with in_clinic(acme):
        [claim] = services.claims_build(charges=[charge.pk])
    desk = client_for(acme, make_user(acme, FRONT_DESK))
    assert desk.post(f"{CLAIMS}{claim.pk}/submit/").status_code == 403
    assert desk.get(CLAIMS).status_code == 403
    assert (
        desk.post("/api/v1/acknowledgements/", {}, content_type="application/json").status_code
        == 403
    )
    reader = client_for(acme, make_user(acme, INTEGRATOR))
    assert [c["id"] for c in reader.get(CLAIMS).json()["results"]] == [claim.pk]
    assert reader.post(f"{CLAIMS}{claim.pk}/submit/").status_code == 403
    assert reader.post(f"{CLAIMS}{claim.pk}/void/").status_code == 403


def test_a_biller_of_one_clinic_sees_nothing_of_anothers_claims(
    acme, globex, make_user, client_for
):
    charge = _charge(acme)
    with in_clinic(acme):
        [claim] = services.claims_build(charges=[charge.pk])
    other = client_for(globex, make_user(globex, BILLER))
    assert other.get(CLAIMS).json()["results"] == []
    assert other.get(f"{CLAIMS}{claim.pk}/").status_code == 404
    assert other.post(f"{CLAIMS}{claim.pk}/submit/").status_code == 404
    assert other.get(f"{CLAIMS}{claim.pk}/x12/").status_code == 404
    # acme's token on globex's host is refused
    mine = client_for(acme, make_user(acme, BILLER))
    mine.defaults["HTTP_HOST"] = other.defaults["HTTP_HOST"]
    assert mine.get(CLAIMS).status_code == 401


def test_the_claims_list_costs_the_same_queries_for_one_claim_or_many(
    acme, make_user, client_for, django_assert_max_num_queries
):
    api = client_for(acme, make_user(acme, BILLER))
    with in_clinic(acme):
        bf.billing_profile()
        visit = bf.billable_visit()
    _charge(acme)
    api.get(CLAIMS)  # warm: the user, the clinic
    with in_clinic(acme):
        services.claims_build()
    with django_assert_max_num_queries(12) as one:
        assert len(api.get(CLAIMS).json()["results"]) == 1
    with in_clinic(acme):
        for n in range(5):
            code = f.service_code(f"9{n:04d}")
            bf.charge(visit, code=code)
        services.claims_build()
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert len(api.get(CLAIMS).json()["results"]) == 2


def test_a_claims_rows_are_what_drfs_fields_would_write_for_every_kind_of_claim(acme):
    """ClaimSerializer writes its rows directly (for speed): the same as the declared fields,
    for a draft with findings, a submitted claim, its replacement and a void, in UTC and in a
    zone with an offset."""
    from django.utils import timezone
    from rest_framework import serializers

    from billing.api.claims import ClaimDetailSerializer, ClaimSerializer

    with in_clinic(acme):
        bf.billing_profile()
        draft = services.claim_scrub(
            claim=services.claims_build(
                charges=[
                    bf.charge(bf.billable_visit(units_authorized=4), units=6, pointers=(1, 3)).pk
                ]
            )[0]
        )
        assert draft.findings
        sent = services.claims_build(charges=[bf.charge(bf.billable_visit()).pk])[0]
        services.claims_submit(claims=[sent])
        Claim.objects.filter(pk=sent.pk).update(status="accepted", payer_claim_number="ICN77")
        sent.refresh_from_db()
        replacement = services.claim_correct(claim=sent, frequency="7", reason="units")
        claims = list(services.claim_detail().filter(pk__in=[draft.pk, sent.pk, replacement.pk]))
        assert len(claims) == 3 and any(c.replaces_id for c in claims)
        for zone in ("UTC", "America/New_York"):
            with timezone.override(zone):
                for serializer_class in (ClaimSerializer, ClaimDetailSerializer):
                    for claim in claims:
                        serializer = serializer_class(claim)
                        fields = serializers.ModelSerializer.to_representation(serializer, claim)
                        assert serializer.data == fields, (zone, serializer_class, claim.status)

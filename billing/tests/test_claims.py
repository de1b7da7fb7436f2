"""Claims: built from open charges, scrubbed, submitted in 837P files that pyx12 accepts,
frozen once sent, moved by 999 and 277CA acknowledgements, replaced, voided and appealed."""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import IntegrityError, transaction

from billing import claims as services
from billing.models import Charge, Claim, ClaimLine, EpisodeDiagnosis, PayerRules, Submission
from billing.tests import factories as bf
from billing.x12.claims import read_837p
from billing.x12.reading import X12Refused
from billing.x12.validate import validate
from scheduling.tests import factories as f
from tests.fixtures import in_clinic

FIXTURES = Path(__file__).parent / "fixtures" / "x12"


def assert_valid_837p(text: str) -> None:
    result = validate(text)
    assert result.ok, result.errors


def ack_999(submission: Submission, code: str = "A") -> str:
    """A 999 answering `submission` (its ST02 in AK202) with `code`."""
    text = (FIXTURES / "ack999.txt").read_text()
    number = f"{submission.pk:09d}"
    head = text.split("AK2*837*0001")[0]
    rejected = (
        "IK3*CLM*25*2300*8~\nIK4*5:1*1331*7*5X~\n" if code == "R" else ""
    )  # a reason, for a rejection
    body = (
        f"AK2*837*{number}*005010X222A1~\n{rejected}IK5*{code}{'*5' if code == 'R' else ''}~\n"
        f"AK9*{code}*1*1*{0 if code == 'R' else 1}~\n"
    )
    count = 3 + body.count("~")  # ST, AK1, the body, SE
    head = head.replace("AK1*HC*1*", f"AK1*HC*{submission.pk}*")
    return f"{head}{body}SE*{count}*0001~\nGE*1*31~\nIEA*1*000000031~\n"


def ack_277(*answers: tuple[Claim, str, str]) -> str:
    """A 277CA answering each (claim, category, payer claim number)."""
    text = (FIXTURES / "ca277.txt").read_text()
    head = text.split("HL*4*3*PT~")[0]
    body = ""
    for n, (claim, category, icn) in enumerate(answers, start=4):
        body += (
            f"HL*{n}*3*PT~\nNM1*QC*1*DOE*JOHN****MI*MEM123456~\n"
            f"TRN*2*{claim.control_number}~\n"
            f"STC*{category}:20:PR*20240216*{'WQ' if category.startswith('A1') or category == 'A2' else 'U'}*{claim.total_charge}~\n"  # noqa: E501
        )
        if icn:
            body += f"REF*1K*{icn}~\n"
        body += "DTP*472*RD8*20240110-20240110~\n"
    segments = head.count("~") - 2 + body.count("~") + 1  # from ST to SE
    return f"{head}{body}SE*{segments}*0001~\nGE*1*41~\nIEA*1*000000041~\n"


def _ready_claim(visit=None, **charge) -> Claim:
    bf.billing_profile()
    visit = visit or bf.billable_visit()
    made = bf.charge(visit, **charge)
    [claim] = services.claims_build(charges=[made.pk])
    return services.claim_scrub(claim=claim)


# --- Building -----------------------------------------------------------------------------------


def test_claims_build_batches_per_payer_patient_and_provider_and_bills_the_charges(acme):
    with in_clinic(acme):
        first = bf.billable_visit()
        same = bf.billable_visit(
            patient=first.patient,
            practitioner=first.practitioner,
            day=first.appointment.start.date() + timedelta(days=1),
        )
        other = bf.billable_visit()
        charges = [bf.charge(first), bf.charge(same, episode=first.episode), bf.charge(other)]
        Charge.objects.filter(pk=charges[1].pk).update(
            coverage=first.coverage, payer=first.payer, authorization=first.authorization,
            authorization_number=first.authorization.number,
        )  # fmt: skip
        built = services.claims_build()
        assert len(built) == 2
        mine = next(c for c in built if c.patient_id == first.patient.pk)
        assert list(mine.lines.values_list("charge_id", flat=True)) == [c.pk for c in charges[:2]]
        assert mine.total_charge == charges[0].amount + charges[1].amount
        assert mine.status == "draft" and mine.frequency == "1"
        assert set(Charge.objects.values_list("status", flat=True)) == {"billed"}
        with pytest.raises(services.NothingToBillError):
            services.claims_build()  # billed once
        assert Claim.objects.count() == 2


def test_claims_build_splits_at_50_lines(acme):
    with in_clinic(acme):
        bf.billing_profile()
        visit = bf.billable_visit(units_authorized=100)
        EpisodeDiagnosis.objects.bulk_create(
            EpisodeDiagnosis(episode=visit.episode, rank=rank, code=f"F{rank:02d}.1")
            for rank in range(2, 13)
        )  # twelve diagnoses, the most a claim holds
        codes = [f.service_code(f"9{n:04d}", 15) for n in range(53)]
        visit.line.service_codes.add(*codes)
        for n, code in enumerate(codes):
            bf.charge(visit, code=code, units=1, pointers=((n % 12) + 1,))
        built = services.claims_build()
        assert sorted(c.lines.count() for c in built) == [3, 50]
        big = max(built, key=lambda c: c.lines.count())
        assert services.claim_scrub(claim=big, today=visit.appointment.start.date()).findings == []
        assert [n for (n,) in ClaimLine.objects.filter(claim=big).values_list("number")] == list(
            range(1, 51)
        )


# --- Scrubbing and submitting -------------------------------------------------------------------


def test_a_clean_claim_is_ready_and_its_837p_validates_with_pyx12(acme):
    with in_clinic(acme):
        claim = _ready_claim()
        assert claim.status == "ready" and claim.findings == []
        submission = services.claims_submit(claims=[claim])
        assert_valid_837p(submission.x12)
        batch = read_837p(submission.x12)
        assert (
            batch.interchange_control_number,
            batch.group_control_number,
            batch.transaction_control_number,
        ) == (submission.pk,) * 3
        [sent] = batch.claims
        assert sent.claim_id == f"C{claim.pk}" and sent.total_charge == claim.total_charge
        assert [line.line_ref for line in sent.lines] == [
            str(pk) for pk in claim.lines.values_list("pk", flat=True)
        ]
        assert sent.prior_authorization.startswith("AUTH-")
        claim.refresh_from_db()
        assert (claim.status, claim.submission_id) == ("submitted", submission.pk)


def test_scrubber_findings_are_stored_and_refuse_the_submission_naming_the_field(acme):
    with in_clinic(acme):
        visit = bf.billable_visit(units_authorized=4)
        claim = _ready_claim(visit, units=6, pointers=(1, 3))
        assert claim.status == "draft"
        codes = {finding["code"]: finding for finding in claim.findings}
        assert codes["diagnosis-rank-missing"]["field"] == "episode.diagnoses"
        assert codes["units-exceed-authorization"]["field"] == "lines"
        assert "left" in codes["units-exceed-authorization"]["message"]
        with pytest.raises(services.ClaimFindingsError) as refused:
            services.claims_submit(claims=[claim])
        findings = refused.value.extra["findings"]
        assert {f["claim"] for f in findings} == {claim.pk}
        assert all(f["field"] and f["message"] for f in findings)
        claim.refresh_from_db()
        assert claim.status == "draft" and Submission.objects.count() == 0


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("Dr. Gráinne Ní Bhriain", ("Ni Bhriain", "Grainne")),
        ("Oisín Ó Briain", ("O Briain", "Oisin")),
        ("Ludwig van Beethoven", ("van Beethoven", "Ludwig")),
        ("Referring, Rita", ("Referring", "Rita")),
        ("Mary Jane O’Neill", ("O'Neill", "Mary Jane")),
        ("Madonna", ("Madonna", "")),
        ("", ("", "")),
    ],
)
def test_names_are_split_for_the_837p_in_its_character_set(name, split):
    assert services._split_name(name) == split


def test_the_payers_authorization_rule_covers_only_the_codes_that_need_one(acme):
    with in_clinic(acme):
        bf.billing_profile()
        for needed in (True, False):
            visit = bf.billable_visit()
            visit.code.requires_authorization = needed
            visit.code.save(update_fields=["requires_authorization"])
            made = bf.charge(visit)
            Charge.objects.filter(pk=made.pk).update(authorization=None, authorization_number="")
            [claim] = services.claims_build(charges=[made.pk])
            claim = services.claim_scrub(claim=claim)
            found = [finding["code"] for finding in claim.findings]
            assert ("authorization-missing" in found) is needed, (needed, claim.findings)


def test_timely_filing_follows_the_payers_rule(acme):
    with in_clinic(acme):
        visit = bf.billable_visit()
        PayerRules.objects.create(payer=visit.payer, timely_filing_days=30)
        claim = _ready_claim(visit)
        late = visit.appointment.start.date() + timedelta(days=31)
        claim = services.claim_scrub(claim=claim, today=late)
        assert [f["code"] for f in claim.findings] == ["timely-filing"]
        assert claim.findings[0]["field"] == "lines[0].service_date"


def test_a_submitted_claim_is_never_edited_and_its_lines_are_frozen(acme):
    with in_clinic(acme):
        claim = _ready_claim()
        services.claims_submit(claims=[claim])
        line = claim.lines.get()
        with pytest.raises(services.ClaimNotEditableError):
            services.claim_update(claim=claim, lines=[services.LineChange(id=line.pk, units=1)])
        with pytest.raises(services.ClaimNotEditableError):
            services.claim_scrub(claim=claim)
        with pytest.raises(services.ClaimNotEditableError):
            services.claims_submit(claims=[claim])  # sent once
        with pytest.raises(IntegrityError), transaction.atomic():
            ClaimLine.objects.filter(pk=line.pk).update(units=1)  # the trigger
        assert ClaimLine.objects.get(pk=line.pk).units == 4


def test_a_draft_claims_lines_change_and_a_removed_lines_charge_reopens(acme):
    with in_clinic(acme):
        visit = bf.billable_visit()
        a = bf.charge(visit)
        b = bf.charge(visit, code=f.service_code("97155", 15), units=2)
        [claim] = services.claims_build()
        keep = claim.lines.get(charge=a)
        claim = services.claim_update(
            claim=claim, lines=[services.LineChange(id=keep.pk, units=3, amount=Decimal("150"))]
        )
        assert claim.total_charge == Decimal("150.00") and claim.lines.count() == 1
        assert Charge.objects.get(pk=b.pk).status == "open"


# --- Acknowledgements ---------------------------------------------------------------------------


def test_a_999_accepts_or_rejects_the_submissions_claims(acme):
    with in_clinic(acme):
        accepted, rejected = _ready_claim(), _ready_claim()
        one = services.claims_submit(claims=[accepted])
        two = services.claims_submit(claims=[rejected])
        result = services.acknowledgement_import(text=ack_999(one, "A"))
        assert (result.kind, [c.pk for c in result.claims]) == ("999", [accepted.pk])
        result = services.acknowledgement_import(text=ack_999(two, "R"))
        accepted.refresh_from_db(), rejected.refresh_from_db(), two.refresh_from_db()
        assert accepted.status == "accepted"
        assert rejected.status == "rejected" and "CLM" in rejected.status_reason
        assert two.acknowledgement == "rejected"
        # a rejected claim's charge is open again, for a corrected claim
        assert rejected.lines.get().charge.status == "open"
        again = services.acknowledgement_import(text=ack_999(one, "A"))
        assert again.claims == []  # a replayed file moves nothing


def test_a_277ca_accepts_with_the_payer_claim_number_and_rejects_per_claim(acme):
    with in_clinic(acme):
        good, bad = _ready_claim(), _ready_claim()
        services.claims_submit(claims=[good, bad])
        text = ack_277((good, "A2", "ICN-1"), (bad, "A7", ""))
        assert validate(text).ok, validate(text).errors
        result = services.acknowledgement_import(text=text)
        assert sorted(c.pk for c in result.claims) == sorted([good.pk, bad.pk])
        good.refresh_from_db(), bad.refresh_from_db()
        assert (good.status, good.payer_claim_number) == ("accepted", "ICN-1")
        assert bad.status == "rejected" and "A7" in bad.status_reason


def test_a_malformed_acknowledgement_is_refused_naming_the_segment_and_changes_nothing(acme):
    with in_clinic(acme):
        claim = _ready_claim()
        submission = services.claims_submit(claims=[claim])
        text = ack_999(submission, "A").replace("AK9*A*1*1*1", "AK9*A*1*1*X")
        with pytest.raises(X12Refused) as refused:
            services.acknowledgement_import(text=text)
        assert any(f.segment == "AK9" for f in refused.value.findings)
        claim.refresh_from_db()
        assert claim.status == "submitted"
        with pytest.raises(X12Refused) as refused:
            services.acknowledgement_import(text=(FIXTURES / "aba835.txt").read_text())
        assert refused.value.findings[0].segment == "GS"


# --- Replacing, voiding, appealing --------------------------------------------------------------


def _accepted(claim: Claim, icn: str = "ICN-9") -> Claim:
    services.claims_submit(claims=[claim])
    services.acknowledgement_import(text=ack_277((claim, "A2", icn)))
    claim.refresh_from_db()
    return claim


@pytest.mark.parametrize(("frequency", "after"), [("7", "replaced"), ("8", "voided")])
def test_a_replacement_or_void_names_the_payer_claim_number_and_retires_the_original(
    acme, frequency, after
):
    with in_clinic(acme):
        original = _accepted(_ready_claim())
        correction = services.claim_correct(claim=original, frequency=frequency)
        assert (correction.status, correction.replaces_id) == ("draft", original.pk)
        with pytest.raises(services.ClaimStateError):
            services.claim_correct(claim=original, frequency=frequency)  # one at a time
        correction = services.claim_scrub(claim=correction)
        assert correction.status == "ready", correction.findings
        submission = services.claims_submit(claims=[correction])
        assert_valid_837p(submission.x12)
        [sent] = read_837p(submission.x12).claims
        assert (sent.frequency_code, sent.original_claim_ref) == (frequency, "ICN-9")
        original.refresh_from_db()
        assert original.status == after


def test_only_a_claim_the_payer_holds_is_replaced_and_only_a_denied_one_appealed(acme):
    with in_clinic(acme):
        claim = _ready_claim()
        with pytest.raises(services.ClaimStateError):
            services.claim_correct(claim=claim, frequency="7")
        with pytest.raises(services.ClaimStateError):
            services.claim_appeal(claim=claim, note="why")
        Claim.objects.filter(pk=claim.pk).update(status="denied")
        appealed = services.claim_appeal(claim=claim, note="Authorization was on file")
        assert (appealed.status, appealed.status_reason) == (
            "appealed",
            "Authorization was on file",
        )

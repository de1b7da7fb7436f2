"""The 999 and 277CA readers over fixtures of our own making (both pass pyx12: OK), and
broken variants refused naming the segment. No database."""

from pathlib import Path

import pytest

from billing.x12.acknowledgements import parse_277ca, parse_999
from billing.x12.reading import X12Refused

FIXTURES = Path(__file__).parent / "fixtures" / "x12"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def refused(parse, text: str) -> list[str]:
    with pytest.raises(X12Refused) as refusal:
        parse(text)
    return [str(finding) for finding in refusal.value.findings]


def test_999_accepts_one_transaction_set_and_rejects_the_other_naming_segments():
    [ack] = parse_999(fixture("ack999.txt"))
    assert (ack.functional_id, ack.group_control_number, ack.version) == (
        "HC",
        "1",
        "005010X222A1",
    )
    assert (ack.code, ack.included, ack.received, ack.accepted_count) == ("P", 2, 2, 1)
    assert ack.status.startswith("partially accepted")
    accepted, rejected = ack.transactions
    assert (accepted.control_number, accepted.accepted, accepted.errors) == ("0001", True, ())
    assert (rejected.control_number, rejected.accepted, rejected.syntax_errors) == (
        "0002",
        False,
        ("5",),
    )
    assert rejected.reasons == [
        "N4 at segment 18 (loop 2010): segment has data element errors; "
        "N402: invalid code value ('ZZ')",
        "CLM at segment 25 (loop 2300): segment has data element errors; "
        "CLM05-01: invalid code value ('5X')",
    ]
    assert rejected.errors[1].elements[0].reference == "1331"


def test_277ca_accepts_and_rejects_claims_by_our_claim_id_with_the_reasons():
    [ack] = parse_277ca(fixture("ca277.txt"))
    assert (ack.reference, ack.payer, ack.batch) == ("277CA0001", "BLUE CROSS", "BATCH0001")
    assert [c.claim_id for c in ack.accepted] == ["PATACCT001"]
    assert [c.claim_id for c in ack.rejected] == ["PATACCT002"]
    accepted, rejected = ack.claims
    assert accepted.payer_claim_number == "PAYERICN0001"
    assert accepted.reasons == ["A2 accepted into adjudication (status 20, entity PR)"]
    assert rejected.patient_name == "RICHARD ROE"
    assert rejected.reasons == [
        "A7 rejected for invalid information (status 562, entity 85): "
        "REFERRING PROVIDER NPI IS INVALID",
        "A6 rejected for missing information (status 35, entity QC)",
    ]
    assert rejected.amount == "80.00"


def test_an_unknown_status_category_is_refused_naming_stc():
    text = fixture("ca277.txt").replace("STC*A2:20:PR", "STC*Q9:20:PR")
    [finding] = refused(parse_277ca, text)
    assert finding.startswith("STC at segment 23: STC01") and "Q9" in finding


def test_a_999_with_a_wrong_segment_count_is_refused_naming_se():
    findings = refused(parse_999, fixture("ack999.txt").replace("SE*12*0001", "SE*11*0001"))
    assert any(f.startswith("SE segment") and "SE count" in f for f in findings)


def test_a_truncated_277ca_is_refused():
    text = fixture("ca277.txt")
    findings = refused(parse_277ca, text[: text.index("HL*5*3*PT")])
    assert any("Transaction Set Trailer" in f for f in findings)


def test_an_835_is_not_a_999():
    findings = refused(parse_999, fixture("aba835.txt"))
    assert any(
        f.startswith("GS segment: expected a FA group of version 005010X231A1") for f in findings
    )

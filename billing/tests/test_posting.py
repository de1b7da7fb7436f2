"""Posting 835s: exact amounts on the ledger, claim statuses from the money, the worklist,
refusals that post nothing, and one post per trace (also under two concurrent imports)."""

import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from billing import ledger
from billing.models import Claim, LedgerEntry, Payment, Remittance, RemittanceClaim
from billing.posting import remittance_post
from billing.tests.remit import Pay, claim_payment, paying, remittance_835, submitted_claim
from billing.x12.reading import X12Refused
from tests.fixtures import in_clinic

FIXTURES = Path(__file__).parent / "fixtures" / "x12"
D = Decimal


def rows() -> tuple[int, int, int, int]:
    return (
        Remittance.objects.count(),
        RemittanceClaim.objects.count(),
        LedgerEntry.objects.count(),
        Payment.objects.count(),
    )


def test_an_835_paying_a_generated_claim_posts_exactly(acme):
    with in_clinic(acme):
        claim = submitted_claim()  # 200.00 owed by the payer
        text = paying(claim, [Pay("160.00", (("CO", "45", "20.00"), ("PR", "2", "20.00")))])
        result = remittance_post(text=text, file_name="era.835")
        assert result.created
        [remittance] = result.remittances
        assert remittance.payment_amount == D("160.00")
        assert remittance.payment.amount == D("160.00")  # the payer's Payment row
        claim.refresh_from_db()
        assert claim.status == Claim.Status.PAID
        assert claim.payer_claim_number == f"ICN{claim.pk}"
        balance = ledger.claim_balance(claim=claim)
        assert (balance.payers, balance.patient) == (D("0.00"), D("20.00"))
        kinds = sorted(
            LedgerEntry.objects.filter(remittance=remittance).values_list("kind", "party", "amount")
        )
        assert kinds == [
            ("adjustment", "payer", D("-20.00")),
            ("payment", "payer", D("-160.00")),
            ("transfer", "patient", D("20.00")),
            ("transfer", "payer", D("-20.00")),
        ]
        [record] = RemittanceClaim.objects.all()
        assert record.claim == claim and record.paid_amount == D("160.00")


def test_the_fixture_835_posts_co45_pr2_and_the_co197_denial(acme):
    with in_clinic(acme):
        claim = submitted_claim(
            codes=("97153", "97155"), sizes={"97153": (8, "480.00"), "97155": (1, "80.00")}
        )
        claim.payer.edi_payer_id = "1512345678"
        claim.payer.save(update_fields=["edi_payer_id"])
        first, second = claim.lines.all()
        text = (
            (FIXTURES / "aba835.txt")
            .read_text()
            .replace("PATACCT001", claim.control_number)
            .replace("REF*6R*LINE1", f"REF*6R*{first.pk}")
            .replace("REF*6R*LINE2", f"REF*6R*{second.pk}")
        )
        remittance_post(text=text)
        claim.refresh_from_db()
        assert claim.status == Claim.Status.PARTIALLY_PAID  # one line paid, one denied
        assert "authorization absent" in claim.status_reason and "N54" in claim.status_reason
        assert ledger.charge_balance(charge=first.charge) == ledger.Balance(D(0), D("20.00"))
        assert ledger.charge_balance(charge=second.charge) == ledger.Balance(D(0), D(0))
        denial = LedgerEntry.objects.get(reason_code="197")
        assert (denial.group_code, denial.amount, denial.remark_codes) == ("CO", D("-80"), ["N54"])
        assert denial.claim_line == second
        assert LedgerEntry.objects.get(reason_code="45").amount == D("-80.00")
        pr = LedgerEntry.objects.filter(reason_code="2").values_list("party", "amount")
        assert sorted(pr) == [("patient", D("20.00")), ("payer", D("-20.00"))]


def test_a_claim_whose_every_line_is_co197_and_paid_nothing_is_denied(acme):
    with in_clinic(acme):
        claim = submitted_claim(codes=("97153", "97155"))
        denied = Pay("0.00", (("CO", "197", "200.00"),), remarks=("N54",))
        remittance_post(text=paying(claim, [denied, denied], status="4"))
        claim.refresh_from_db()
        assert claim.status == Claim.Status.DENIED
        assert claim.status_reason.startswith("CO-197 authorization absent")
        assert ledger.claim_balance(claim=claim).total == D(0)


def test_money_not_clp02_decides_the_status(acme):
    with in_clinic(acme):
        claim = submitted_claim()
        # CLP02 4 (denied), but the payer paid what it allowed: paid
        remittance_post(text=paying(claim, [Pay("50.00", (("CO", "45", "150.00"),))], status="4"))
        claim.refresh_from_db()
        assert claim.status == Claim.Status.PAID
        # CLP02 1 (processed as primary), but nothing paid or owed on any line: denied
        other = submitted_claim()
        remittance_post(text=paying(other, [Pay("0.00", (("CO", "50", "200.00"),))]))
        other.refresh_from_db()
        assert other.status == Claim.Status.DENIED


def test_lines_without_ref_6r_match_by_code_date_and_units(acme):
    with in_clinic(acme):
        claim = submitted_claim(codes=("97153", "97155"))
        pays = [Pay("150.00", (("CO", "45", "50.00"),), reference=False)] * 2
        remittance_post(text=paying(claim, pays))
        line_ids = set(claim.lines.values_list("pk", flat=True))
        posted = set(
            LedgerEntry.objects.filter(kind="payment").values_list("claim_line", flat=True)
        )
        assert posted == line_ids
        claim.refresh_from_db()
        assert claim.status == Claim.Status.PAID


def test_a_claim_payment_we_cannot_match_waits_on_the_worklist(acme):
    with in_clinic(acme):
        claim = submitted_claim()
        before = LedgerEntry.objects.count()
        other = claim_payment(claim, [Pay("200.00")])
        import dataclasses

        unknown = dataclasses.replace(other, claim_id="C999999")
        remittance_post(text=remittance_835([unknown], payer_id=claim.payer.edi_payer_id))
        [record] = RemittanceClaim.objects.all()
        assert record.claim is None and record.patient_control_number == "C999999"
        assert record.paid_amount == D("200.00")
        assert LedgerEntry.objects.count() == before  # nothing posted for it
        claim.refresh_from_db()
        assert claim.status == Claim.Status.SUBMITTED


def test_a_draft_claim_is_not_paid_by_an_835(acme):
    with in_clinic(acme):
        claim = submitted_claim()
        Claim.objects.filter(pk=claim.pk).update(status="draft")
        remittance_post(text=paying(claim, [Pay("200.00")]))
        assert RemittanceClaim.objects.get().claim is None


def test_a_second_payment_of_a_paid_claim_is_an_overpayment_not_a_silent_negative(acme):
    with in_clinic(acme):
        claim = submitted_claim()
        pay = Pay("160.00", (("CO", "45", "20.00"), ("PR", "2", "20.00")))
        remittance_post(text=paying(claim, [pay]))
        remittance_post(text=paying(claim, [pay]))  # another trace: the payer paid twice
        balance = ledger.claim_balance(claim=claim)
        over = LedgerEntry.objects.get(kind="overpayment")
        assert over.amount == D("-160.00") and over.party == "payer"
        assert balance.payers == over.amount  # negative by exactly the overpayment
        assert balance.patient == D("20.00")  # the patient's share billed once
        assert LedgerEntry.objects.filter(kind="payment").count() == 1


def test_a_reversal_reverses_the_earlier_posting_and_reopens_the_claim(acme):
    with in_clinic(acme):
        claim = submitted_claim()
        remittance_post(text=paying(claim, [Pay("160.00", (("CO", "45", "40.00"),))]))
        reversal = claim_payment(
            claim, [Pay("160.00", (("CO", "45", "40.00"),))], status="22", sign=-1
        )
        remittance_post(text=remittance_835([reversal], payer_id=claim.payer.edi_payer_id))
        claim.refresh_from_db()
        assert claim.status == Claim.Status.ACCEPTED  # reopened
        assert ledger.claim_balance(claim=claim).payers == D("200.00")
        assert LedgerEntry.objects.filter(kind="reversal").count() == 2
        # a reversal and its correction in one file: the correction posts afresh
        corrected = claim_payment(claim, [Pay("150.00", (("CO", "45", "50.00"),))])
        again = claim_payment(
            claim, [Pay("150.00", (("CO", "45", "50.00"),))], status="22", sign=-1
        )
        remittance_post(text=remittance_835([again, corrected], payer_id=claim.payer.edi_payer_id))
        claim.refresh_from_db()
        assert claim.status == Claim.Status.PAID
        assert ledger.claim_balance(claim=claim).total == D(0)


def _refused(text: str) -> list[str]:
    with pytest.raises(X12Refused) as refused:
        remittance_post(text=text)
    return [str(finding) for finding in refused.value.findings]


def test_an_unbalanced_or_malformed_835_is_refused_whole_naming_the_segment(acme):
    with in_clinic(acme):
        good = submitted_claim()
        bad = submitted_claim()
        text = remittance_835(
            [claim_payment(good, [Pay("200.00")]), claim_payment(bad, [Pay("200.00")])],
            payer_id=good.payer.edi_payer_id,
        )
        before = rows()
        # the second claim's line says paid 199.00: its line and claim no longer balance
        svc, wrong = "SVC*HC:97153*200.00*200.00**4", "SVC*HC:97153*200.00*199.00**4"
        unbalanced = text[::-1].replace(svc[::-1], wrong[::-1], 1)[::-1]
        findings = _refused(unbalanced)
        assert any(f.startswith("SVC at segment") for f in findings), findings
        truncated = text.split("SE*")[0]
        assert any(f.startswith("SE") or "IEA" in f for f in _refused(truncated))
        assert _refused("not an 835") == [
            "ISA segment: the file does not begin with an ISA segment"
        ]
        assert rows() == before  # nothing posted, not even the balanced first claim
        assert ledger.claim_balance(claim=good).payers == D("200.00")


def test_the_same_835_twice_posts_once(acme):
    with in_clinic(acme):
        claim = submitted_claim()
        text = paying(claim, [Pay("200.00")], trace="EFT42")
        first = remittance_post(text=text)
        counts = rows()
        second = remittance_post(text=text)
        assert first.created and not second.created
        assert second.remittances[0].pk == first.remittances[0].pk
        assert rows() == counts
        assert ledger.claim_balance(claim=claim).total == D(0)


def test_two_concurrent_imports_of_one_835_post_once(committed_acme):
    with in_clinic(committed_acme):
        claim = submitted_claim()
        text = paying(claim, [Pay("160.00", (("CO", "45", "40.00"),))], trace="RACE1")
    barrier = threading.Barrier(2)
    outcomes: list = []

    def run() -> None:
        try:
            with in_clinic(committed_acme):
                barrier.wait(timeout=30)
                outcomes.append(remittance_post(text=text).created)
        except Exception as error:  # noqa: BLE001
            outcomes.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes, key=str) == [False, True], outcomes
    with in_clinic(committed_acme):
        assert Remittance.objects.count() == 1
        assert LedgerEntry.objects.filter(kind="payment").count() == 1
        assert ledger.claim_balance(claim=claim).total == D(0)


def _thousand_claims(claim: Claim) -> list[Claim]:
    """1,000 submitted one-line claims like `claim`, inserted in bulk (each on a charge of its
    own code: one live charge per visit and code)."""
    from billing.models import Charge, ClaimLine
    from practice.models import ServiceCode

    template = claim.lines.select_related("charge").get().charge
    codes = ServiceCode.objects.bulk_create(
        [ServiceCode(code=f"T{i:04d}", label="Bench", unit_minutes=15) for i in range(1000)]
    )
    charges = []
    for code in codes:
        charge = Charge.objects.get(pk=template.pk)
        charge.pk, charge.service_code = None, code
        charges.append(charge)
    charges = Charge.objects.bulk_create(charges)
    LedgerEntry.objects.bulk_create(
        LedgerEntry(patient_id=c.patient_id, party="payer", payer_id=c.payer_id, charge=c,
                    kind="charge", amount=c.amount, posted_on=c.service_date)
        for c in charges
    )  # fmt: skip
    claims = Claim.objects.bulk_create(
        Claim(patient_id=claim.patient_id, payer_id=claim.payer_id, coverage_id=claim.coverage_id,
              episode_id=claim.episode_id, rendering_id=claim.rendering_id,
              total_charge=claim.total_charge)
        for _ in charges
    )  # fmt: skip
    ClaimLine.objects.bulk_create(
        ClaimLine(claim=c, charge=ch, number=1, amount=ch.amount, units=ch.units)
        for c, ch in zip(claims, charges, strict=True)
    )
    Claim.objects.filter(pk__in=[c.pk for c in claims]).update(status="submitted")
    return claims


def test_timing_of_posting_1000_claim_payments(acme, capsys):
    """The figure for the README and the report (the target is 5 s on this machine)."""
    with in_clinic(acme):
        claims = _thousand_claims(submitted_claim())
        pay = [Pay("160.00", (("CO", "45", "20.00"), ("PR", "2", "20.00")))]
        text = remittance_835(
            [claim_payment(c, pay) for c in claims], payer_id=claims[0].payer.edi_payer_id
        )
        from billing.x12.remittance import parse_835

        started = time.perf_counter()
        parse_835(text)
        reading = time.perf_counter() - started
        started = time.perf_counter()
        result = remittance_post(text=text)
        seconds = time.perf_counter() - started
        assert result.created
        assert Claim.objects.filter(status="paid").count() == 1000
        assert LedgerEntry.objects.filter(kind="payment").count() == 1000
        with capsys.disabled():
            print(
                f"\n835 of 1,000 claim payments read, checked and posted in {seconds:.2f} s "
                f"(reading and checking alone: {reading:.2f} s)"
            )

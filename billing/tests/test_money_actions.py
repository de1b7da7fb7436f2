"""The money a biller moves and the money providers are paid: an 835's provider-level
adjustments (PLB) posted to the clinic's account with the payer, never to a patient, with the
file's balance checked; transfers between payer and patient and write-offs through the API
(idempotent, audited, 4xx naming the field, roles); a patient's credit applied to their
oldest balances, also under concurrent payments."""

import threading
from datetime import date
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent
from billing import credits, ledger, payments, posting
from billing.models import LedgerEntry, ProviderAdjustment, Remittance
from billing.posting import remittance_post
from billing.tests import factories
from billing.tests.remit import (
    Pay,
    charge_of,
    claim_payment,
    remittance_835,
    submitted_claim,
)
from billing.x12.reading import X12Refused
from tests.fixtures import in_clinic

D = Decimal
REMITTANCES = "/api/v1/remittances/"


def _json(client, url: str, body: dict, key: str | None = None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(url, body, content_type="application/json", **headers)


def _with_plb(claim, plb, **kwargs) -> str:
    return remittance_835(
        [claim_payment(claim, [Pay("160.00", (("CO", "45", "40.00"),))])],
        payer_id=claim.payer.edi_payer_id,
        plb=plb,
        **kwargs,
    )


# --- PLB -----------------------------------------------------------------------------------------


def test_plb_adjustments_post_to_the_providers_account_not_to_a_patient(
    acme, make_user, client_for
):
    with in_clinic(acme):
        earlier = submitted_claim()
        claim = submitted_claim()
        # interest added (L6, negative), a recoupment of the earlier claim withheld (WO)
        text = _with_plb(claim, (("L6", "", "-5.25"), ("WO", earlier.control_number, "30.00")))
        before = LedgerEntry.objects.count()
        [remittance] = remittance_post(text=text).remittances
        assert remittance.payment_amount == D("135.25")  # 160 − (−5.25 + 30)
        rows = list(remittance.provider_entries.order_by("id"))
        assert [(r.reason, r.reference, r.amount, r.claim_id) for r in rows] == [
            ("L6", "", D("-5.25"), None),
            ("WO", earlier.control_number, D("30.00"), earlier.pk),
        ]
        assert all(r.segment > 0 and r.payer_id == claim.payer_id for r in rows)
        # the claim's entries only: no patient's ledger carries the PLB
        assert LedgerEntry.objects.count() - before == 2
        assert ledger.claim_balance(claim=claim).total == D(0)
        assert ledger.claim_balance(claim=earlier).payers == D("200.00")
        assert posting.provider_balance(payer=claim.payer) == D("24.75")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            ProviderAdjustment.objects.filter(pk=rows[0].pk).update(amount=D("1.00"))
    biller = client_for(acme, make_user(acme, "biller"))
    detail = biller.get(f"{REMITTANCES}{remittance.pk}/").json()
    shown = detail["provider_adjustments"]
    assert [(a["reason"], a["amount"], a["claim"]) for a in shown] == [
        ("L6", "-5.25", None),
        ("WO", "30.00", earlier.pk),
    ]
    assert (
        "interest" in shown[0]["description"]
        and "added to the payment" in (shown[0]["description"])
    )
    assert "recoupment" in shown[1]["description"]


def test_an_835_whose_payment_is_not_claims_less_plb_is_refused_naming_bpr_and_plb(acme):
    with in_clinic(acme):
        claim = submitted_claim()
        text = _with_plb(claim, (("L6", "", "-5.00"),), payment=D("160.00"))
        before = (Remittance.objects.count(), LedgerEntry.objects.count())
        with pytest.raises(X12Refused) as refused:
            remittance_post(text=text)
        [finding] = [str(f) for f in refused.value.findings]
        assert finding.startswith("BPR") and "PLB at segment" in finding
        assert "(= 165.00)" in finding
        unknown = _with_plb(claim, (("ZZ", "", "5.00"),))
        with pytest.raises(X12Refused) as refused:
            remittance_post(text=unknown)
        said = [str(f) for f in refused.value.findings]
        assert any(f.startswith("PLB at segment") and "ZZ" in f for f in said), said
        assert (Remittance.objects.count(), LedgerEntry.objects.count()) == before
        assert ProviderAdjustment.objects.count() == 0


def test_a_remittance_of_plb_alone_posts_the_adjustment(acme):
    with in_clinic(acme):
        claim = submitted_claim()
        text = remittance_835([], payer_id=claim.payer.edi_payer_id, plb=(("L6", "", "-12.00"),))
        [remittance] = remittance_post(text=text).remittances
        assert remittance.payment_amount == D("12.00")
        assert remittance.payment.amount == D("12.00")  # the payer's payment: the interest
        assert [r.amount for r in remittance.provider_entries.all()] == [D("-12.00")]


# --- Transfers and write-offs ------------------------------------------------------------------


def test_a_biller_moves_a_balance_to_the_patient_and_back_once_per_key(acme, make_user, client_for):
    biller = client_for(acme, make_user(acme, "biller"))
    with in_clinic(acme):
        claim = submitted_claim()  # 200.00 owed by the payer
        charge = claim.lines.get().charge
    body = {"charge": charge.pk, "amount": "50.00", "to": "patient", "memo": "deductible"}
    first = _json(biller, "/api/v1/transfers/", body, key="t-1")
    assert first.status_code == 201, first.json()
    entries = first.json()["entries"]
    assert [(e["party"], e["amount"], e["kind"]) for e in entries] == [
        ("payer", "-50.00", "transfer"),
        ("patient", "50.00", "transfer"),
    ]
    again = _json(biller, "/api/v1/transfers/", body, key="t-1")
    assert again.status_code == 201 and again.json()["entries"] == entries
    back = _json(
        biller,
        "/api/v1/transfers/",
        {"charge": charge.pk, "amount": "20.00", "to": "payer"},
        key="t-2",
    )
    assert back.status_code == 201
    too_much = _json(
        biller, "/api/v1/transfers/", {"charge": charge.pk, "amount": "30.01", "to": "payer"}
    )
    assert too_much.status_code == 409
    assert too_much.json()["code"] == "balance-too-small"
    assert "amount" in too_much.json()["errors"]
    reused = _json(
        biller,
        "/api/v1/write-offs/",
        {"charge": charge.pk, "amount": "1.00", "party": "payer", "reason": "contractual"},
        key="t-1",
    )
    assert reused.status_code == 422 and "Idempotency-Key" in reused.json()["errors"]
    with in_clinic(acme):
        balance = ledger.charge_balance(charge=charge)
        assert (balance.payers, balance.patient) == (D("170.00"), D("30.00"))
        assert LedgerEntry.objects.filter(kind="transfer").count() == 4
        audited = AuditEvent.objects.filter(
            action="create", content_type__model="ledgerentry", patient_id=charge.patient_id
        )
        assert audited.count() == 6  # each answer's entries, the replay's too


def test_a_write_off_names_its_reason_and_refuses_more_than_is_owed(acme, make_user, client_for):
    biller = client_for(acme, make_user(acme, "biller"))
    with in_clinic(acme):
        claim = submitted_claim()
        charge = claim.lines.get().charge
    url = "/api/v1/write-offs/"
    made = _json(
        biller,
        url,
        {"charge": charge.pk, "amount": "40.00", "party": "payer", "reason": "timely_filing"},
        key="w-1",
    )
    assert made.status_code == 201, made.json()
    entry = made.json()
    assert (entry["amount"], entry["group_code"], entry["reason_code"]) == ("-40.00", "CO", "29")
    assert entry["write_off_reason"] == "timely_filing"
    assert (
        _json(
            biller,
            url,
            {"charge": charge.pk, "amount": "40.00", "party": "payer", "reason": "timely_filing"},
            key="w-1",
        ).json()
        == entry
    )
    cases = [
        ({"amount": "160.01", "party": "payer", "reason": "contractual"}, 409, "amount"),
        ({"amount": "1.00", "party": "patient", "reason": "bad_debt"}, 409, "amount"),
        ({"amount": "1.00", "party": "payer", "reason": "courtesy", "reason_code": "X1"}, 400,
         "reason_code"),
        ({"amount": "1.00", "party": "payer", "reason": "courtesy"}, 400, "reason_code"),
        ({"amount": "1.00", "party": "payer", "reason": "no-such"}, 400, "reason"),
        ({"amount": "0", "party": "payer", "reason": "contractual"}, 400, "amount"),
        ({"amount": "1.00", "party": "insurer", "reason": "contractual"}, 400, "party"),
    ]  # fmt: skip
    for extra, code, field in cases:
        response = _json(biller, url, {"charge": charge.pk, **extra})
        assert response.status_code == code, (extra, response.json())
        assert field in response.json()["errors"], (extra, response.json())
    missing = _json(biller, url, {"charge": 999999, "amount": "1.00", "party": "payer"})
    assert missing.status_code == 400 and "charge" in missing.json()["errors"]
    with in_clinic(acme):
        assert ledger.charge_balance(charge=charge).payers == D("160.00")
        assert LedgerEntry.objects.filter(kind="adjustment").count() == 1


def test_only_billers_and_clinic_admins_transfer_or_write_off(acme, make_user, client_for):
    with in_clinic(acme):
        charge = submitted_claim().lines.get().charge
    body = {"charge": charge.pk, "amount": "1.00", "to": "patient"}
    for role in ("front_desk", "practitioner", "integrator"):
        client = client_for(acme, make_user(acme, role))
        assert _json(client, "/api/v1/transfers/", body).status_code == 403, role
        assert _json(client, "/api/v1/write-offs/", {**body, "party": "payer"}).status_code == 403
    admin = client_for(acme, make_user(acme, "clinic_admin"))
    assert _json(admin, "/api/v1/transfers/", body).status_code == 201


def test_concurrent_write_offs_post_once_per_key_and_never_more_than_is_owed(committed_acme):
    with in_clinic(committed_acme):
        charge = submitted_claim().lines.get().charge  # the payer owes 200.00

    def race(keys: tuple[str, str], amount: str) -> list:
        barrier = threading.Barrier(len(keys))
        outcomes: list = []

        def run(key: str) -> None:
            try:
                with in_clinic(committed_acme):
                    barrier.wait(timeout=30)
                    entry = payments.adjustment_post(
                        charge=charge,
                        amount=D(amount),
                        party="payer",
                        write_off_reason="contractual",
                        idempotency_key=key,
                    )
                    outcomes.append(entry.pk)
            except payments.BalanceTooSmallError:
                outcomes.append("refused")
            except Exception as error:  # noqa: BLE001
                outcomes.append(error)
            finally:
                connection.close()

        threads = [threading.Thread(target=run, args=(key,)) for key in keys]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return outcomes

    # one request retried at once: one write-off, both answered with it
    first, second = race(("a", "a"), "150.00")
    assert isinstance(first, int) and first == second
    # two write-offs racing for the 50.00 left: one posts, the other is refused
    outcomes = race(("b", "c"), "30.00")
    assert sorted(map(str, outcomes))[-1] == "refused" and len(outcomes) == 2, outcomes
    assert sum(isinstance(o, int) for o in outcomes) == 1
    with in_clinic(committed_acme):
        assert LedgerEntry.objects.filter(kind="adjustment").count() == 2
        assert ledger.charge_balance(charge=charge).payers == D("20.00")


# --- Credit ------------------------------------------------------------------------------------


def _credit(patient) -> Decimal:
    entries = LedgerEntry.objects.filter(patient=patient, party="patient", charge__isnull=True)
    return -sum((e.amount for e in entries), D(0))


def test_credit_is_applied_to_the_oldest_balances_when_they_appear(acme, make_user, client_for):
    with in_clinic(acme):
        visit = factories.billable_visit()
        prepaid = payments.payment_take(patient=visit.patient, amount=D("100.00"), method="cash")
        assert _credit(visit.patient) == D("100.00")
        newer = charge_of(visit, "97155", "80.00", service_date=date(2026, 11, 20))
        older = charge_of(visit, "97156", "50.00", service_date=date(2026, 11, 2))
        applied = credits.credit_apply(patient=visit.patient)
        assert len(applied) == 4  # two shares, each a pair
        assert ledger.charge_balance(charge=older).patient == D(0)
        assert ledger.charge_balance(charge=newer).patient == D("30.00")
        assert _credit(visit.patient) == D(0)
        assert credits.credit_apply(patient=visit.patient) == []  # nothing left to apply
        # a refund of the prepayment now takes back from the newest charge it paid
        payments.payment_refund(payment=prepaid, amount=D("10.00"))
        assert ledger.charge_balance(charge=newer).patient == D("40.00")
        # an 835's patient responsibility is paid from a credit the patient holds
        payments.payment_take(patient=visit.patient, amount=D("60.00"), method="card")
        assert _credit(visit.patient) == D("20.00")
        claim = submitted_claim(visit)
        text = remittance_835(
            [claim_payment(claim, [Pay("150.00", (("PR", "2", "50.00"),))])],
            payer_id=claim.payer.edi_payer_id,
        )
        remittance_post(text=text)
        insured = claim.lines.get().charge
        assert ledger.charge_balance(charge=insured).patient == D("30.00")
        assert _credit(visit.patient) == D(0)
        assert ledger.patient_balance(patient=visit.patient).patient == D("30.00")
    # and a biller may apply it explicitly through the API
    biller = client_for(acme, make_user(acme, "biller"))
    with in_clinic(acme):
        payments.payment_take(patient=visit.patient, amount=D("5.00"), method="cash")
    response = biller.post(f"/api/v1/patients/{visit.patient.pk}/balance/apply-credit/")
    assert response.status_code == 200, response.json()
    assert response.json()["applied"] == [] and response.json()["balance"]["patient"] == "25.00"
    front_desk = client_for(acme, make_user(acme, "front_desk"))
    url = f"/api/v1/patients/{visit.patient.pk}/balance/apply-credit/"
    assert front_desk.post(url).status_code == 403


def test_credit_never_goes_below_zero_under_concurrent_payments(committed_acme):
    with in_clinic(committed_acme):
        visit = factories.billable_visit()
        patient = visit.patient
        payments.payment_take(patient=patient, amount=D("100.00"), method="cash")  # credit
        charges = [
            charge_of(visit, code, "70.00", service_date=date(2026, 11, day))
            for code, day in (("97155", 2), ("97156", 9), ("97157", 16))
        ]
    barrier = threading.Barrier(6)
    errors: list = []

    def run(index: int) -> None:
        try:
            with in_clinic(committed_acme):
                barrier.wait(timeout=30)
                if index % 2:
                    credits.credit_apply(patient=patient)
                else:
                    payments.payment_take(patient=patient, amount=D("40.00"), method="card")
        except Exception as error:  # noqa: BLE001
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with in_clinic(committed_acme):
        owed = [ledger.charge_balance(charge=c).patient for c in charges]
        assert all(amount >= 0 for amount in owed), owed
        # 210.00 charged, 100.00 + 3 × 40.00 paid: every charge paid, 10.00 of credit left
        assert owed == [D(0), D(0), D(0)]
        assert _credit(patient) == D("10.00")
        assert ledger.patient_balance(patient=patient).patient == D("-10.00")

"""The money admin: a biller uploads an 835 (posted, or refused naming the segment with
nothing posted), reads what was posted in plain English, matches a worklist claim payment;
the front desk takes a copay but never posts a remittance; a biller refunds, transfers a
balance between payer and patient, writes a share off and applies a patient's credit (the front
desk does none of these)."""

from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditEvent
from billing import ledger
from billing.models import Claim, LedgerEntry, Payment, Remittance, RemittanceClaim
from billing.tests import factories
from billing.tests.remit import Pay, charge_of, paying, submitted_claim
from tests.fixtures import in_clinic, session_client

ADD = "/admin/billing/remittance/add/"


def test_a_biller_uploads_an_835_and_reads_its_adjustments_in_plain_english(acme, make_user):
    biller = session_client(acme, make_user(acme, "biller"))
    with in_clinic(acme):
        claim = submitted_claim(codes=("97153", "97155"))
        denied = Pay("0.00", (("CO", "197", "200.00"),), remarks=("N54",))
        text = paying(claim, [Pay("160.00", (("CO", "45", "40.00"),)), denied])
    assert biller.get(ADD).status_code == 200
    response = biller.post(ADD, {"file": SimpleUploadedFile("era.835", text.encode())})
    assert response.status_code == 302, response.content[:500]
    detail = biller.get(response["Location"])
    page = detail.content.decode()
    assert "authorization absent" in page and "N54" in page
    assert "every claim payment found its claim" in page
    with in_clinic(acme):
        claim.refresh_from_db()
        assert claim.status == Claim.Status.PARTIALLY_PAID
    assert biller.get("/admin/billing/remittance/").status_code == 200
    assert biller.get("/admin/billing/ledgerentry/").status_code == 200


def test_a_refused_upload_names_the_segment_and_posts_nothing(acme, make_user):
    biller = session_client(acme, make_user(acme, "biller"))
    with in_clinic(acme):
        claim = submitted_claim()
        text = paying(claim, [Pay("200.00")]).replace("*200.00*200.00**4", "*200.00*190.00**4")
    response = biller.post(ADD, {"x12": text})
    assert response.status_code == 200
    assert "SVC at segment" in response.content.decode()
    with in_clinic(acme):
        assert Remittance.objects.count() == 0 and LedgerEntry.objects.count() == 1


def test_a_biller_matches_a_worklist_claim_payment_to_our_claim(acme, make_user):
    biller = session_client(acme, make_user(acme, "biller"))
    with in_clinic(acme):
        claim = submitted_claim()
        text = paying(claim, [Pay("180.00", (("CO", "45", "20.00"),))]).replace(
            claim.control_number, "OLDREF77"
        )
    posted = biller.post(ADD, {"x12": text})
    with in_clinic(acme):
        remittance = Remittance.objects.get()
        record = RemittanceClaim.objects.get()
        assert record.claim is None
    match = f"/admin/billing/remittance/{remittance.pk}/match/"
    assert "OLDREF77" in biller.get(match).content.decode()
    assert posted.status_code == 302
    biller.post(match, {"record": record.pk, "claim": claim.pk})
    with in_clinic(acme):
        record.refresh_from_db()
        claim.refresh_from_db()
        assert record.claim == claim and claim.status == Claim.Status.PAID
        assert ledger.claim_balance(claim=claim).total == Decimal(0)
    biller.post(match, {"record": record.pk, "claim": claim.pk})  # twice: refused
    with in_clinic(acme):
        assert LedgerEntry.objects.filter(kind="payment").count() == 1


def test_the_front_desk_takes_a_copay_but_never_posts_a_remittance(acme, make_user):
    desk = session_client(acme, make_user(acme, "front_desk"))
    with in_clinic(acme):
        visit = factories.billable_visit()
        visit.coverage.copay_amount = Decimal("25.00")
        visit.coverage.save(update_fields=["copay_amount"])
    assert desk.get(ADD).status_code == 403
    form = {
        "patient": visit.patient.pk,
        "kind": "copay",
        "method": "card",
        "appointment": visit.appointment.pk,
        "reference": "",
        "note": "",
    }
    response = desk.post("/admin/billing/payment/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    with in_clinic(acme):
        copay = Payment.objects.get()
        assert (copay.kind, copay.amount) == ("copay", Decimal("25.00"))
        assert ledger.patient_balance(patient=visit.patient).patient == Decimal("-25.00")
    refund = f"/admin/billing/payment/{copay.pk}/refund/"
    assert desk.get(refund).status_code == 403


def test_a_biller_refunds_from_the_admin_never_beyond_the_payment(acme, make_user):
    biller = session_client(acme, make_user(acme, "biller"))
    with in_clinic(acme):
        visit = factories.billable_visit()
        charge_of(visit, "97155", "40.00")
        from billing import payments

        paid = payments.payment_take(patient=visit.patient, amount=Decimal("40.00"), method="cash")
    url = f"/admin/billing/payment/{paid.pk}/refund/"
    too_much = biller.post(url, {"amount": "40.01", "reason": ""})
    assert too_much.status_code == 200 and "more than is left" in too_much.content.decode()
    assert biller.post(url, {"amount": "15.00", "reason": "overcharged"}).status_code == 302
    with in_clinic(acme):
        assert Payment.objects.get(kind="refund").amount == Decimal("15.00")
        assert ledger.patient_balance(patient=visit.patient).patient == Decimal("15.00")
    assert biller.get(f"/admin/billing/payment/{paid.pk}/change/").status_code == 200


def _move(client, charge, key: str, **fields):
    form = {"action": "to_patient", "amount": "", "reason": "", "reason_code": "", "memo": ""}
    return client.post(
        f"/admin/billing/ledgerentry/charge/{charge.pk}/move/", {**form, **fields, "key": key}
    )


def test_a_biller_transfers_and_writes_off_in_the_admin_once_per_form(acme, make_user):
    biller = session_client(acme, make_user(acme, "biller"))
    with in_clinic(acme):
        charge = submitted_claim().lines.get().charge  # 200.00 owed by the payer
    page = biller.get(f"/admin/billing/ledgerentry/charge/{charge.pk}/move/")
    assert page.status_code == 200 and "200.00" in page.content.decode()
    moved = _move(biller, charge, "admin-1", amount="50.00", memo="deductible")
    assert moved.status_code == 302
    assert moved["Location"].endswith(f"?patient={charge.patient_id}")
    assert _move(biller, charge, "admin-1", amount="50.00").status_code == 302  # a double submit
    unexplained = _move(biller, charge, "admin-2", action="write_off_payer", amount="10.00")
    assert unexplained.status_code == 200
    assert "Say why it is written off." in unexplained.content.decode()
    too_much = _move(
        biller, charge, "admin-3", action="write_off_payer", amount="150.01", reason="contractual"
    )
    assert too_much.status_code == 200 and "errorlist" in too_much.content.decode()
    written = _move(
        biller, charge, "admin-4", action="write_off_patient", amount="20.00", reason="courtesy"
    )
    assert written.status_code == 302, written.content.decode()[:2000]
    with in_clinic(acme):
        balance = ledger.charge_balance(charge=charge)
        assert (balance.payers, balance.patient) == (Decimal("150.00"), Decimal("30.00"))
        assert LedgerEntry.objects.filter(kind="transfer").count() == 2
        write_off = LedgerEntry.objects.get(kind="adjustment")
        assert (write_off.party, write_off.amount) == ("patient", Decimal("-20.00"))
        assert write_off.write_off_reason == "courtesy"
        audited = AuditEvent.objects.filter(action="create", content_type__model="ledgerentry")
        assert audited.count() == 5  # each answer's entries, the double submit's too


def test_a_biller_applies_a_patients_credit_in_the_admin(acme, make_user):
    biller = session_client(acme, make_user(acme, "biller"))
    with in_clinic(acme):
        visit = factories.billable_visit()
        charge = charge_of(visit, "97155", "80.00")
        from billing import payments

        payments.payment_take(patient=visit.patient, amount=Decimal("30.00"), method="cash")
        payments.payment_take(patient=visit.patient, amount=Decimal("100.00"), method="card")
    url = f"/admin/billing/ledgerentry/patient/{visit.patient.pk}/apply-credit/"
    assert biller.get(url).status_code == 200
    applied = biller.post(url)
    assert applied.status_code == 302
    with in_clinic(acme):
        assert ledger.charge_balance(charge=charge).patient == Decimal(0)
        assert ledger.patient_balance(patient=visit.patient).patient == Decimal("-50.00")
    assert "Applied" in biller.get(applied["Location"]).content.decode()


def test_the_front_desk_neither_moves_money_nor_applies_credit_in_the_admin(acme, make_user):
    desk = session_client(acme, make_user(acme, "front_desk"))
    with in_clinic(acme):
        charge = submitted_claim().lines.get().charge
    assert desk.get(f"/admin/billing/ledgerentry/charge/{charge.pk}/move/").status_code == 403
    assert _move(desk, charge, "desk-1", amount="5.00").status_code == 403
    credit = f"/admin/billing/ledgerentry/patient/{charge.patient_id}/apply-credit/"
    assert desk.post(credit).status_code == 403
    with in_clinic(acme):
        assert ledger.charge_balance(charge=charge).patient == Decimal(0)

"""The money API: 835 upload (201, the same file again 200, refused 400 naming the segment,
nothing posted), payments with an Idempotency-Key, refunds, balances (a patient sees only
their own), roles and another clinic."""

import threading

from django.db import connection
from django.test import Client

from billing.models import LedgerEntry, Payment, Remittance, RemittanceClaim
from billing.tests import factories
from billing.tests.remit import Pay, charge_of, paying, submitted_claim
from practice.models import Patient
from tests.fixtures import host_of, in_clinic

URL = "/api/v1/remittances/"


def _counts():
    return (
        Remittance.objects.count(),
        RemittanceClaim.objects.count(),
        LedgerEntry.objects.count(),
        Payment.objects.count(),
    )


def test_a_biller_uploads_an_835_once_and_the_same_file_again_answers_200(
    acme, make_user, client_for
):
    biller = client_for(acme, make_user(acme, "biller"))
    with in_clinic(acme):
        claim = submitted_claim()
        text = paying(claim, [Pay("160.00", (("CO", "45", "20.00"), ("PR", "2", "20.00")))])
    response = biller.post(URL, text, content_type="text/plain")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["created"] is True
    [remittance] = body["remittances"]
    assert remittance["payment_amount"] == "160.00" and remittance["unmatched"] == 0
    assert remittance["claims"][0]["claim"] == claim.pk
    again = biller.post(URL, {"x12": text}, content_type="application/json")
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["remittances"][0]["id"] == remittance["id"]
    listed = biller.get(URL).json()["results"]
    assert [r["id"] for r in listed] == [remittance["id"]]
    detail = biller.get(f"{URL}{remittance['id']}/").json()
    assert detail["claims"][0]["paid_amount"] == "160.00"


def test_a_multipart_upload_with_an_unmatched_claim_lands_on_the_worklist(
    acme, make_user, client_for
):
    biller = client_for(acme, make_user(acme, "biller"))
    with in_clinic(acme):
        claim = submitted_claim()
        text = paying(claim, [Pay("200.00")]).replace(claim.control_number, "C99999999")
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = biller.post(URL, {"file": SimpleUploadedFile("era.835", text.encode())})
    assert response.status_code == 201, response.json()
    [remittance] = response.json()["remittances"]
    assert remittance["file_name"] == "era.835" and remittance["unmatched"] == 1
    worklist = biller.get(f"{URL}?unmatched=true").json()["results"]
    assert [r["id"] for r in worklist] == [remittance["id"]]
    assert biller.get(f"{URL}?unmatched=false").json()["results"] == []


def test_a_refused_835_is_a_400_naming_the_segment_and_posts_nothing(acme, make_user, client_for):
    biller = client_for(acme, make_user(acme, "biller"))
    with in_clinic(acme):
        claim = submitted_claim()
        text = paying(claim, [Pay("200.00")])
        before = _counts()
    broken = text.replace("*200.00*200.00**4", "*200.00*199.00**4")
    response = biller.post(URL, broken, content_type="text/plain")
    assert response.status_code == 400
    problem = response.json()
    assert problem["code"] == "x12-refused"
    assert {f["segment"] for f in problem["findings"]} >= {"SVC"}
    assert biller.post(URL, {}, content_type="application/json").json()["errors"]["file"]
    with in_clinic(acme):
        assert _counts() == before


def test_the_front_desk_cannot_post_a_remittance_but_takes_payments(acme, make_user, client_for):
    desk = client_for(acme, make_user(acme, "front_desk"))
    with in_clinic(acme):
        claim = submitted_claim()
        text = paying(claim, [Pay("200.00")])
    assert desk.post(URL, text, content_type="text/plain").status_code == 403
    with in_clinic(acme):
        assert Remittance.objects.count() == 0
    body = {"patient": claim.patient_id, "amount": "20.00", "method": "cash"}
    first = desk.post(
        "/api/v1/payments/", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="d-1"
    )
    second = desk.post(
        "/api/v1/payments/", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="d-1"
    )
    assert first.status_code == 201 and second.json()["id"] == first.json()["id"]
    refund = desk.post(
        f"/api/v1/payments/{first.json()['id']}/refund/", {"amount": "5.00"},
        content_type="application/json",
    )  # fmt: skip
    assert refund.status_code == 403  # refunds are a biller's
    bad = desk.post("/api/v1/payments/", {**body, "amount": "-3"}, content_type="application/json")
    assert bad.status_code == 400 and "amount" in bad.json()["errors"]
    with in_clinic(acme):
        assert Payment.objects.count() == 1


def test_a_biller_refunds_never_beyond_the_payment(acme, make_user, client_for):
    biller = client_for(acme, make_user(acme, "biller"))
    with in_clinic(acme):
        visit = factories.billable_visit()
    body = {"patient": visit.patient.pk, "amount": "30.00", "method": "card"}
    paid = biller.post("/api/v1/payments/", body, content_type="application/json").json()
    url = f"/api/v1/payments/{paid['id']}/refund/"
    ok = biller.post(url, {"amount": "20.00"}, content_type="application/json")
    assert ok.status_code == 201 and ok.json()["refund_of"] == paid["id"]
    too_much = biller.post(url, {"amount": "10.01"}, content_type="application/json")
    assert too_much.status_code == 409
    assert too_much.json()["code"] == "refund-exceeds-payment"
    assert "amount" in too_much.json()["errors"]
    assert biller.get(f"/api/v1/payments/{paid['id']}/").json()["refunded"] == "20.00"


def test_a_patient_sees_only_their_own_balance_and_pays_online(acme, make_user, client_for):
    with in_clinic(acme):
        visit = factories.billable_visit()
        other = factories.billable_visit()
        charge_of(visit, "97155", "80.00")
        charge_of(other, "97155", "60.00")
    user = make_user(acme, "patient")
    with in_clinic(acme):
        Patient.objects.filter(pk=visit.patient.pk).update(user=user)
    patient = client_for(acme, user)
    mine = patient.get("/api/v1/me/balance/")
    assert mine.status_code == 200
    assert mine.json()["patient"] == "80.00" and mine.json()["currency"] == "USD"
    assert mine.json()["charges"][0]["code"] == "97155"
    assert (
        patient.get(f"/api/v1/patients/{visit.patient.pk}/balance/").json()["total"]
        == (mine.json()["total"])
    )
    assert patient.get(f"/api/v1/patients/{other.patient.pk}/balance/").status_code == 404
    cash = {"patient": visit.patient.pk, "amount": "80.00", "method": "cash"}
    assert (
        patient.post("/api/v1/payments/", cash, content_type="application/json").status_code == 403
    )
    online = {**cash, "method": "online", "token": "tok_visa"}
    paid = patient.post("/api/v1/payments/", online, content_type="application/json")
    assert paid.status_code == 201, paid.json()
    assert patient.get("/api/v1/me/balance/").json()["patient"] == "0.00"
    theirs = {**online, "patient": other.patient.pk}
    assert (
        patient.post("/api/v1/payments/", theirs, content_type="application/json").status_code
        == 403
    )
    declined = {**online, "token": "tok_decline", "amount": "1.00"}
    refused = patient.post("/api/v1/payments/", declined, content_type="application/json")
    assert refused.status_code == 402 and refused.json()["code"] == "payment-declined"
    ids = {p["patient"] for p in patient.get("/api/v1/payments/").json()["results"]}
    assert ids == {visit.patient.pk}


def test_a_biller_of_one_clinic_sees_nothing_of_another(acme, globex, make_user, client_for):
    acme_biller = client_for(acme, make_user(acme, "biller"))
    globex_biller = client_for(globex, make_user(globex, "biller"))
    with in_clinic(acme):
        claim = submitted_claim()
        text = paying(claim, [Pay("200.00")])
    posted = acme_biller.post(URL, text, content_type="text/plain").json()
    remittance = posted["remittances"][0]["id"]
    payment = acme_biller.post(
        "/api/v1/payments/",
        {"patient": claim.patient_id, "amount": "5.00", "method": "cash"},
        content_type="application/json",
    ).json()["id"]
    assert globex_biller.get(URL).json()["results"] == []
    assert globex_biller.get(f"{URL}{remittance}/").status_code == 404
    assert globex_biller.get("/api/v1/payments/").json()["results"] == []
    assert globex_biller.get(f"/api/v1/payments/{payment}/").status_code == 404
    balance = globex_biller.get(f"/api/v1/patients/{claim.patient_id}/balance/")
    assert balance.status_code == 404
    # the acme file posted in globex finds none of acme's claims: all on globex's worklist
    again = globex_biller.post(URL, text, content_type="text/plain").json()
    assert again["remittances"][0]["unmatched"] == 1
    with in_clinic(acme):
        assert Remittance.objects.count() == 1


def test_two_concurrent_uploads_of_one_835_answer_201_and_200(committed_acme, make_user):
    user = make_user(committed_acme, "biller")
    from tests.fixtures import ClinicClient

    with in_clinic(committed_acme):
        claim = submitted_claim()
        text = paying(claim, [Pay("200.00")], trace="HTTPRACE")
    clients = [ClinicClient(committed_acme).authenticate(user) for _ in range(2)]
    barrier = threading.Barrier(2)
    codes: list = []

    def run(client: Client) -> None:
        try:
            barrier.wait(timeout=30)
            codes.append(client.post(URL, text, content_type="text/plain").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200, 201], codes
    with in_clinic(committed_acme):
        assert Remittance.objects.count() == 1
        assert LedgerEntry.objects.filter(kind="payment").count() == 1
    assert host_of(committed_acme)

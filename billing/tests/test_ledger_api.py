"""`/api/v1/ledger-entries/` (issue 20: cursor pagination for the large lists, the ledger among
them): the append-only money ledger by cursor, newest posting first, filtered, each adjustment
explained in plain English; staff and integrators read it, a patient does not (memos), and
another clinic's biller sees none of it."""

from billing.models import LedgerEntry
from billing.posting import remittance_post
from billing.tests.remit import Pay, paying, submitted_claim
from tests.fixtures import in_clinic

URL = "/api/v1/ledger-entries/"


def _walk(client, url: str) -> list[dict]:
    rows, pages = [], 0
    while url:
        answer = client.get(url)
        assert answer.status_code == 200, answer.content
        body = answer.json()
        assert "count" not in body  # by cursor: no count
        rows += body["results"]
        url, pages = body["next"], pages + 1
    return rows


def test_a_biller_walks_the_ledger_by_cursor_filtered_and_explained(acme, make_user, client_for):
    biller = client_for(acme, make_user(acme, "biller"))
    with in_clinic(acme):
        claims = [submitted_claim() for _ in range(3)]
        for claim in claims:
            remittance_post(
                text=paying(claim, [Pay("160.00", (("CO", "45", "20.00"), ("PR", "2", "20.00")))])
            )
        expected = list(
            LedgerEntry.objects.order_by("-posted_on", "-id").values_list("id", flat=True)
        )
    assert len(expected) >= 12
    walked = _walk(biller, f"{URL}?page_size=5")
    assert [row["id"] for row in walked] == expected  # every entry once, in order
    first = claims[0]
    adjustments = _walk(biller, f"{URL}?claim={first.pk}&kind=adjustment")
    assert {(row["group_code"], row["reason_code"], row["party"]) for row in adjustments} == {
        ("CO", "45", "payer"),
    }  # fmt: skip
    moved = _walk(biller, f"{URL}?claim={first.pk}&kind=transfer")  # PR-2: the patient's share
    assert {(row["party"], row["amount"]) for row in moved} == {
        ("payer", "-20.00"), ("patient", "20.00"),
    }  # fmt: skip
    contractual = next(row for row in adjustments if row["reason_code"] == "45")
    assert contractual["explanation"] and "45" not in contractual["explanation"][:2]
    assert contractual["amount"] == "-20.00" and contractual["claim"] == first.pk
    payments = _walk(biller, f"{URL}?kind=payment&patient={first.patient_id}")
    assert payments and {row["patient"] for row in payments} == {first.patient_id}
    bad = biller.get(f"{URL}?cursor=not-a-cursor")
    assert bad.status_code == 400 and "cursor" in bad.json()["errors"]
    one = biller.get(f"{URL}{expected[0]}/")
    assert one.status_code == 200 and one.json()["id"] == expected[0]


def test_a_patient_reads_balances_not_the_ledger_and_another_clinic_sees_nothing(
    acme, globex, make_user, client_for
):
    with in_clinic(acme):
        claim = submitted_claim()
        remittance_post(text=paying(claim, [Pay("160.00", (("CO", "45", "40.00"),))]))
        entry = LedgerEntry.objects.filter(patient=claim.patient).first()
        patient_user = make_user(acme, "patient")
        claim.patient.user = patient_user
        claim.patient.save(update_fields=["user"])
    patient = client_for(acme, patient_user)
    assert patient.get(URL).status_code == 403
    assert patient.get(f"{URL}{entry.pk}/").status_code == 403
    desk = client_for(acme, make_user(acme, "front_desk"))
    assert desk.get(URL).status_code == 200
    other = client_for(globex, make_user(globex, "biller"))
    assert other.get(URL).json()["results"] == []
    assert other.get(f"{URL}{entry.pk}/").status_code == 404

"""Billing's reports: the A/R aging (totals are Σ ledger balances), the denial worklist in plain
English, underpayments, their CSV, and the API's roles and clinics."""

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import InternalError, ProgrammingError, transaction

from audit.models import AuditEvent
from billing import ledger, reports
from billing.models import Charge, ChargeBalance, Claim, ClaimLine, LedgerEntry
from billing.tests import factories
from practice.models import Patient
from tests.fixtures import in_clinic

AS_OF = date(2026, 6, 30)
D = Decimal


def charge_of(visit: factories.Visit, *, served: date, units: int = 4) -> Charge:
    """A charge of `visit` on `served`, posted to its payer (what b1's charging will do)."""
    charge = Charge.objects.create(
        appointment=visit.appointment,
        patient=visit.patient,
        episode=visit.episode,
        coverage=visit.coverage,
        payer=visit.payer,
        fee=visit.fee,
        service_code=visit.code,
        service_date=served,
        units=units,
        place_of_service="11",
        diagnosis_pointers=[1],
        amount=visit.fee.charge_per_unit * units,
        expected_allowed=visit.fee.allowed_per_unit * units,
        rendering=visit.practitioner,
        authorization=visit.authorization,
        authorization_number=visit.authorization.number,
    )
    ledger.charge_post(charge=charge)
    return charge


def claim_of(charge: Charge) -> ClaimLine:
    """The charge on a submitted claim of one line."""
    claim = Claim.objects.create(
        patient=charge.patient,
        payer=charge.payer,
        coverage=charge.coverage,
        episode=charge.episode,
        rendering=charge.rendering,
        total_charge=charge.amount,
    )
    line = ClaimLine.objects.create(
        claim=claim, charge=charge, number=1, amount=charge.amount, units=charge.units
    )
    Charge.objects.filter(pk=charge.pk).update(status=Charge.Status.BILLED)
    Claim.objects.filter(pk=claim.pk).update(status=Claim.Status.SUBMITTED)
    return line


def remit(line: ClaimLine, *, paid: str = "0", adjust=(), patient_share: str = "0") -> None:
    """Post what an 835 says of the line (as b3's posting will): the payer's payment, its
    adjustments (group, CARC, amount, remarks) and the patient's share moved to them."""
    charge, claim = line.charge, line.claim
    common = {"patient": charge.patient, "charge": charge, "claim": claim, "claim_line": line}
    if D(paid):
        ledger.entry_add(
            party="payer", payer=charge.payer, kind="payment", amount=-D(paid), **common
        )
    for group, code, amount, *remarks in adjust:
        ledger.entry_add(
            party="payer",
            payer=charge.payer,
            kind="adjustment",
            amount=-D(amount),
            group_code=group,
            reason_code=code,
            remark_codes=remarks,
            **common,
        )
    if D(patient_share):
        ledger.responsibility_transfer(
            charge=charge, amount=D(patient_share), claim=claim, claim_line=line, group_code="PR",
            reason_code="2",
        )  # fmt: skip


@pytest.fixture
def book(acme):
    """Charges of 200.00 (4 units × 50.00, expected allowed 4 × 40.00) aged 10,
    45, 75, 100 and 200 days at AS_OF; the second paid in full, the third denied CO-197, the
    fourth underpaid."""
    with in_clinic(acme):
        visits = [factories.billable_visit() for _ in range(5)]
        charges = [
            charge_of(v, served=AS_OF - timedelta(days=age))
            for v, age in zip(visits, (10, 45, 75, 100, 200), strict=True)
        ]
        lines = [claim_of(c) for c in charges[1:4]]
        # 4 × 50.00 charged, 4 × 40.00 expected allowed
        remit(lines[0], paid="120.00", adjust=[("CO", "45", "40.00")], patient_share="40.00")
        remit(lines[1], adjust=[("CO", "197", "200.00", "N54")])
        remit(lines[2], paid="100.00", adjust=[("CO", "45", "80.00")], patient_share="20.00")
        return {"visits": visits, "charges": charges, "lines": lines}


def test_aging_buckets_by_service_date_and_totals_are_the_sum_of_balances(acme, book):
    with in_clinic(acme):
        by_payer = reports.ar_aging(by="payer", as_of=AS_OF)
        by_patient = reports.ar_aging(by="patient", as_of=AS_OF)
        balances = sum(
            (ledger.patient_balance(patient=p).total for p in Patient.objects.all()), D("0")
        )
        everything = sum(LedgerEntry.objects.values_list("amount", flat=True), D("0"))
    # 200 + (40 patient) + 0 (denied, written off) + (20 patient) + 200
    assert by_payer.total == by_patient.total == balances == everything == D("460.00")
    assert by_payer.totals == (D("200.00"), D("40.00"), D("0.00"), D("20.00"), D("200.00"))
    assert by_patient.totals == by_payer.totals
    own = [row for row in by_payer.rows if row.key is None]
    assert [row.buckets for row in own] == [
        (D("0.00"), D("40.00"), D("0.00"), D("20.00"), D("0.00"))
    ]
    payers = {row.key: row for row in by_payer.rows if row.key is not None}
    assert {p.payer.pk for p in book["visits"]} >= set(payers)
    assert payers[book["visits"][0].payer.pk].buckets[0] == D("200.00")
    assert payers[book["visits"][4].payer.pk].buckets[4] == D("200.00")
    patients = {row.key: row.total for row in by_patient.rows}
    assert patients[book["visits"][1].patient.pk] == D("40.00")
    assert book["visits"][2].patient.pk not in patients  # nothing owed: not a row


def test_aging_follows_reversals_and_refuses_writes_to_its_derived_table(acme, book):
    with in_clinic(acme):
        payment = LedgerEntry.objects.get(claim_line=book["lines"][2], kind="payment")
        ledger.entry_reverse(entry=payment)
        assert reports.ar_aging(as_of=AS_OF).total == D("560.00")
        row = ChargeBalance.objects.get(charge=book["charges"][3], party="payer")
        assert row.amount == D("100.00")
        with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
            ChargeBalance.objects.filter(pk=row.pk).update(amount=0)
        with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
            ChargeBalance.objects.filter(pk=row.pk).delete()
        assert ChargeBalance.objects.get(pk=row.pk).amount == D("100.00")


def test_the_co_197_denial_lands_on_the_worklist_in_plain_english_with_its_authorization(
    acme, book
):
    with in_clinic(acme):
        [denial] = reports.denials()
    visit = book["visits"][2]
    assert (denial.line_id, denial.patient_id) == (book["lines"][1].pk, visit.patient.pk)
    assert [(r.group, r.code, r.remarks, r.amount) for r in denial.reasons] == [
        ("CO", "197", ("N54",), D("200.00"))
    ]
    assert "authorization" in denial.explanation.lower()
    assert "N54" in denial.explanation
    assert denial.authorization_reason
    assert (denial.authorization_id, denial.authorization_number) == (
        visit.authorization.pk,
        visit.authorization.number,
    )


def test_a_denial_without_the_charges_authorization_links_the_one_covering_the_date(acme, book):
    with in_clinic(acme):
        charge = book["charges"][2]
        Charge.objects.filter(pk=charge.pk).update(authorization=None)
        auth = book["visits"][2].authorization
        auth.start_date, auth.end_date = charge.service_date, charge.service_date
        auth.save(update_fields=["start_date", "end_date"])
        [denial] = reports.denials()
    assert denial.authorization_id == auth.pk


def test_a_reversed_denial_leaves_the_worklist(acme, book):
    with in_clinic(acme):
        adjustment = LedgerEntry.objects.get(claim_line=book["lines"][1], kind="adjustment")
        ledger.entry_reverse(entry=adjustment)
        assert reports.denials() == []


def test_underpayments_compare_what_the_payer_allowed_with_the_expected_allowed(acme, book):
    with in_clinic(acme):
        [under] = reports.underpayments()
    # expected 160.00; allowed 100.00 paid + 20.00 patient share; the coinsured line
    # (120.00 + 40.00 = 160.00) is not an underpayment, nor the denied line
    assert under.line_id == book["lines"][2].pk
    assert (under.expected_allowed, under.allowed, under.shortfall) == (
        D("160.00"),
        D("120.00"),
        D("40.00"),
    )


def test_csv_exports_hold_every_row_and_quote_formulas(acme, book):
    with in_clinic(acme):
        aging = list(
            csv.reader(io.StringIO(reports.aging_table(reports.ar_aging(as_of=AS_OF)).csv()))
        )
        Patient.objects.filter(pk=book["visits"][2].patient.pk).update(first_name="=HYPERLINK(1)")
        denials = list(csv.reader(io.StringIO(reports.denials_table(reports.denials()).csv())))
    assert aging[0] == ["payer_id", "payer", *reports.BUCKETS, "total"]
    assert aging[-1][1:] == ["Total", "200.00", "40.00", "0.00", "20.00", "200.00", "460.00"]
    assert denials[1][4].startswith("'=HYPERLINK(1)")
    assert denials[1][10] == "CO-197"


# --- The API -------------------------------------------------------------------------------------


@pytest.fixture
def api(acme, globex, make_user, client_for, book):
    return {
        role: client_for(acme, make_user(acme, role))
        for role in (
            "biller",
            "clinic_admin",
            "integrator",
            "front_desk",
            "practitioner",
            "patient",
        )
    } | {"globex_biller": client_for(globex, make_user(globex, "biller"))}


def test_ar_aging_api_by_payer_and_patient_as_json_and_csv(api, acme, book):
    body = api["biller"].get("/api/v1/reports/ar-aging/", {"as_of": AS_OF}).json()
    assert (body["by"], body["basis"], body["total"]) == ("payer", "service date", "460.00")
    assert body["totals"] == {
        "0-30": "200.00", "31-60": "40.00", "61-90": "0.00", "91-120": "20.00", "120+": "200.00"
    }  # fmt: skip
    by_patient = api["integrator"].get(
        "/api/v1/reports/ar-aging/", {"as_of": AS_OF, "by": "patient"}
    )
    assert by_patient.status_code == 200
    assert {r["id"] for r in by_patient.json()["rows"]} == {
        book["visits"][i].patient.pk for i in (0, 1, 3, 4)
    }
    with in_clinic(acme):
        read = set(
            AuditEvent.objects.filter(object_label="A/R aging by patient").values_list(
                "patient_id", flat=True
            )
        )
    assert read == {book["visits"][i].patient.pk for i in (0, 1, 3, 4)}
    response = api["clinic_admin"].get(
        "/api/v1/reports/ar-aging/", {"as_of": AS_OF, "format": "csv"}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="ar-aging.csv"' in response["Content-Disposition"]
    assert response.content.decode().splitlines()[-1].endswith(",460.00")


def _read_by_aging(clinic) -> list[int]:
    with in_clinic(clinic):
        return list(
            AuditEvent.objects.filter(object_label="A/R aging by patient")
            .order_by("pk")
            .values_list("patient_id", flat=True)
        )


def test_ar_aging_by_patient_comes_a_page_at_a_time_and_audits_only_its_page(api, acme, book):
    """A page names (and records as read) its own patients only; the totals stay the whole
    report's, and the pages together are every patient owing, largest total first."""
    owing = {book["visits"][i].patient.pk for i in (0, 1, 3, 4)}
    query = {"as_of": AS_OF, "by": "patient", "page_size": 3}
    first = api["biller"].get("/api/v1/reports/ar-aging/", query).json()
    assert (first["count"], len(first["rows"]), first["previous"]) == (4, 3, None)
    assert "page=2" in first["next"]
    assert first["total"] == "460.00"  # the whole report's, not the page's
    assert _read_by_aging(acme) == sorted(r["id"] for r in first["rows"])
    second = api["biller"].get("/api/v1/reports/ar-aging/", {**query, "page": 2}).json()
    assert (len(second["rows"]), second["next"], second["total"]) == (1, None, "460.00")
    rows = first["rows"] + second["rows"]
    assert {r["id"] for r in rows} == owing
    totals = [D(r["total"]) for r in rows]
    assert totals == sorted(totals, reverse=True)
    assert sum(totals) == D("460.00")
    assert len(_read_by_aging(acme)) == 4  # 3 then 1: no patient read twice, none unshown
    beyond = api["biller"].get("/api/v1/reports/ar-aging/", {**query, "page": 3})
    assert beyond.status_code == 404
    assert len(_read_by_aging(acme)) == 4


def test_the_aging_page_pages_patients_with_djangos_paginator(acme, book, admin_as, monkeypatch):
    from billing.admin import reports as admin_reports

    monkeypatch.setattr(admin_reports, "PAGE_SIZE", 3)
    biller = admin_as("biller")
    first = biller.get("/admin/billing/reports/ar-aging/", {"as_of": AS_OF, "by": "patient"})
    assert len(first.context["rows"]) == 3
    assert first.context["totals"][-1].text == "460.00"
    assert "Page 1 of 2" in first.content.decode()
    assert len(_read_by_aging(acme)) == 3
    second = biller.get(
        "/admin/billing/reports/ar-aging/", {"as_of": AS_OF, "by": "patient", "page": 2}
    )
    assert len(second.context["rows"]) == 1
    assert len(set(_read_by_aging(acme))) == 4
    export = biller.get(
        "/admin/billing/reports/ar-aging/", {"as_of": AS_OF, "by": "patient", "format": "csv"}
    )
    assert len(export.content.decode().splitlines()) == 1 + 4 + 1  # header, every row, total


@pytest.mark.parametrize(
    ("query", "field"), [({"by": "insurer"}, "by"), ({"as_of": "1066-10-14"}, "as_of")]
)
def test_ar_aging_refuses_bad_input_naming_the_field(api, query, field):
    response = api["biller"].get("/api/v1/reports/ar-aging/", query)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_denials_and_underpayments_api(api, book):
    [denial] = api["biller"].get("/api/v1/reports/denials/").json()
    assert denial["reasons"][0]["code"] == "197"
    assert denial["authorization"] == book["visits"][2].authorization.pk
    assert "authorization" in denial["explanation"].lower()
    [under] = api["clinic_admin"].get("/api/v1/reports/underpayments/").json()
    assert (under["line"], under["shortfall"]) == (book["lines"][2].pk, "40.00")
    response = api["integrator"].get("/api/v1/reports/underpayments/", {"format": "csv"})
    assert response.content.decode().splitlines()[1].startswith(f"C{book['lines'][2].claim_id},")


@pytest.mark.parametrize("role", ["front_desk", "practitioner", "patient"])
@pytest.mark.parametrize("report", ["ar-aging", "denials", "underpayments"])
def test_reports_are_refused_to_roles_without_the_revenue_cycle(api, role, report):
    response = api[role].get(f"/api/v1/reports/{report}/")
    assert response.status_code == 403


def test_a_biller_of_another_clinic_sees_none_of_acmes_money(api, globex):
    body = api["globex_biller"].get("/api/v1/reports/ar-aging/", {"by": "patient"}).json()
    assert (body["rows"], body["total"]) == ([], "0.00")
    assert api["globex_biller"].get("/api/v1/reports/denials/").json() == []
    assert api["globex_biller"].get("/api/v1/reports/underpayments/").json() == []


# --- The admin's pages ---------------------------------------------------------------------------


def test_a_biller_lands_on_the_billing_section_and_reads_each_report(acme, book, admin_as):
    biller = admin_as("biller")
    index = biller.get("/admin/").content.decode()
    assert "Billing" in index and "/admin/billing/reports/ar-aging/" in index
    page = biller.get("/admin/billing/reports/ar-aging/", {"as_of": AS_OF})
    assert page.status_code == 200
    assert page.context["totals"][-1].text == "460.00"
    assert "$460.00" in page.content.decode()  # acme prices in USD
    denials = biller.get("/admin/billing/reports/denials/").content.decode()
    assert "CO-197" in denials
    assert f"/admin/authorizations/authorization/{book['visits'][2].authorization.pk}/" in denials
    under = biller.get("/admin/billing/reports/underpayments/")
    assert [c.text for c in under.context["rows"][0]][-1] == "40.00"
    csv_file = biller.get("/admin/billing/reports/underpayments/", {"format": "csv"})
    assert csv_file["Content-Type"].startswith("text/csv")
    assert csv_file.content.decode().splitlines()[0].startswith("claim,line,")


def test_report_pages_are_refused_to_the_front_desk_and_hidden_from_its_index(acme, admin_as):
    desk = admin_as("front_desk")
    assert "/admin/billing/reports/" not in desk.get("/admin/").content.decode()
    for name in ("ar-aging", "denials", "underpayments"):
        assert desk.get(f"/admin/billing/reports/{name}/").status_code == 403
    assert admin_as("anonymous").get("/admin/billing/reports/ar-aging/").status_code == 302


def test_a_bad_as_of_on_the_page_is_said_not_a_500(acme, admin_as):
    page = admin_as("biller").get("/admin/billing/reports/ar-aging/", {"as_of": "31/12/2026"})
    assert page.status_code == 200
    assert "YYYY-MM-DD" in page.content.decode()

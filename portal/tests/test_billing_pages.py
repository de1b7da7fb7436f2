"""The patient's balance, statement (HTML and PDF) and superbill (PDF): sums of the ledger,
written in the clinic's currency, their own only."""

from datetime import date
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from billing import ledger
from billing.models import Charge
from billing.tests import factories
from billing.tests.test_reports import charge_of, claim_of, remit
from practice.models import ClinicSettings
from tests.fixtures import in_clinic

from .conftest import signed_in


@pytest.fixture
def billed(world):
    """An insured visit (200.00: insurance paid 120.00, wrote off 40.00, 40.00 coinsurance to
    the patient, who paid 15.00 of it) and a self-pay visit of 45.00."""
    with in_clinic(world.clinic):
        insured = factories.billable_visit(patient=world.patient)
        line = claim_of(charge_of(insured, served=date(2026, 3, 2)))
        remit(line, paid="120.00", adjust=[("CO", "45", "40.00")], patient_share="40.00")
        ledger.entry_add(
            patient=world.patient, party="patient", kind="payment", amount=Decimal("-15.00"),
            charge=line.charge,
        )  # fmt: skip
        own = factories.billable_visit(patient=world.patient, day=insured.appointment.start.date())
        self_pay = Charge.objects.create(
            appointment=own.appointment, patient=world.patient, episode=own.episode,
            service_code=own.code, service_date=date(2026, 3, 9), units=1, place_of_service="11",
            diagnosis_pointers=[1], amount=Decimal("45.00"), rendering=own.practitioner,
            status=Charge.Status.SELF_PAY,
        )  # fmt: skip
        ledger.charge_post(charge=self_pay)
    return {"line": line, "self_pay": self_pay}


def test_the_balance_page_shows_what_the_patient_owes_from_the_ledger(world, billed):
    client = signed_in(world.clinic, world.user)
    home = client.get("/").content.decode()
    assert 'href="/balance/"' in home
    page = client.get("/balance/")
    assert page.status_code == 200
    body = page.content.decode()
    assert page.context["statement"].you_owe == Decimal("70.00")  # 40 - 15 + 45
    assert "$70.00" in body and "$120.00" in body
    assert "/balance/superbill.pdf" in body
    with in_clinic(world.clinic):
        read = set(
            AuditEvent.objects.filter(object_label="statement").values_list("object_id", flat=True)
        )
    assert read == {str(billed["line"].charge_id), str(billed["self_pay"].pk)}


def test_money_is_written_in_the_clinics_currency(world, billed):
    with in_clinic(world.clinic):
        ClinicSettings.objects.filter(id=1).update(currency="EUR", locale="en-IE")
    body = signed_in(world.clinic, world.user).get("/balance/").content.decode()
    assert "€70.00" in body


def test_statement_and_superbill_are_pdfs(world, billed):
    client = signed_in(world.clinic, world.user)
    statement = client.get("/balance/statement.pdf")
    assert statement.status_code == 200
    assert statement["Content-Type"] == "application/pdf"
    assert statement.content.startswith(b"%PDF")
    superbill = client.get("/balance/superbill.pdf")
    assert superbill.status_code == 200 and superbill.content.startswith(b"%PDF")


def test_no_superbill_without_self_pay_visits_and_no_one_elses_balance(world, make_user):
    client = signed_in(world.clinic, world.user)
    assert client.get("/balance/superbill.pdf").status_code == 404
    other = make_user(world.clinic, "patient")
    with in_clinic(world.clinic):
        from scheduling.tests import factories as f

        f.patient(user=other)
    page = signed_in(world.clinic, other).get("/balance/")
    assert page.context["statement"].lines == ()


def test_staff_and_visitors_are_sent_away(world, make_user):
    from tests.fixtures import ClinicClient

    assert ClinicClient(world.clinic).get("/balance/").status_code == 302
    biller = signed_in(world.clinic, make_user(world.clinic, "biller"))
    assert biller.get("/balance/statement.pdf").status_code == 302

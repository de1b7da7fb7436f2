"""Paying online from the balance page: through the processor double, once per form, a receipt,
a declined card or too large an amount said on the form with nothing taken, audited, and
nobody else's receipt."""

from datetime import date
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from billing import ledger
from billing.models import Charge, LedgerEntry, Payment
from billing.tests import factories
from tests.fixtures import in_clinic

from .conftest import signed_in

D = Decimal


@pytest.fixture
def owing(world):
    """A self-pay visit of 45.00 the patient owes."""
    with in_clinic(world.clinic):
        visit = factories.billable_visit(patient=world.patient)
        charge = Charge.objects.create(
            appointment=visit.appointment, patient=world.patient, episode=visit.episode,
            service_code=visit.code, service_date=date(2026, 3, 9), units=1,
            place_of_service="11", diagnosis_pointers=[1], amount=D("45.00"),
            rendering=visit.practitioner, status=Charge.Status.SELF_PAY,
        )  # fmt: skip
        ledger.charge_post(charge=charge)
    return charge


def _form(client) -> dict:
    page = client.get("/balance/pay/")
    assert page.status_code == 200
    form = page.context["form"]
    return {"amount": str(form.initial["amount"]), "token": "tok_visa", "key": form.initial["key"]}


def test_the_patient_pays_their_balance_once_and_gets_a_receipt(world, owing):
    client = signed_in(world.clinic, world.user)
    balance = client.get("/balance/").content.decode()
    assert 'href="/balance/pay/"' in balance and "Pay now" in balance
    form = _form(client)
    assert form["amount"] == "45.00"
    paid = client.post("/balance/pay/", form)
    assert paid.status_code == 302, paid.content.decode()[:500]
    again = client.post("/balance/pay/", form)  # the same form sent twice
    assert again["Location"] == paid["Location"]
    receipt = client.get(paid["Location"])
    assert receipt.status_code == 200
    body = receipt.content.decode()
    assert "$45.00" in body and receipt.context["statement"].you_owe == D(0)
    with in_clinic(world.clinic):
        [payment] = Payment.objects.all()
        assert (payment.method, payment.processor, payment.amount) == ("online", "fake", D("45.00"))
        assert payment.processor_id.startswith("fake_ch_")
        assert ledger.charge_balance(charge=owing).patient == D(0)
        assert LedgerEntry.objects.filter(payment=payment).count() == 1
        events = AuditEvent.objects.filter(patient_id=world.patient.pk)
        assert events.filter(action="create", object_id=str(payment.pk)).exists()
        assert events.filter(action="read", object_label="receipt").exists()
    assert "Pay now" not in client.get("/balance/").content.decode()  # nothing left to pay


def test_a_declined_card_or_too_much_takes_nothing_and_says_why(world, owing):
    client = signed_in(world.clinic, world.user)
    form = _form(client)
    declined = client.post("/balance/pay/", {**form, "token": "tok_decline"})
    assert declined.status_code == 200
    assert "declined" in " ".join(declined.context["form"].errors["token"])
    too_much = client.post("/balance/pay/", {**form, "amount": "45.01"})
    assert "amount" in too_much.context["form"].errors
    with in_clinic(world.clinic):
        assert list(Payment.objects.values_list("status", flat=True)) == ["failed"]
        assert not LedgerEntry.objects.filter(kind="payment").exists()
        assert ledger.charge_balance(charge=owing).patient == D("45.00")


def test_a_receipt_is_the_patients_own(world, owing, make_user):
    client = signed_in(world.clinic, world.user)
    paid = client.post("/balance/pay/", {**_form(client), "amount": "20.00"})
    assert paid.status_code == 302
    other = make_user(world.clinic, "patient")
    with in_clinic(world.clinic):
        from scheduling.tests import factories as f

        f.patient(user=other)
    assert signed_in(world.clinic, other).get(paid["Location"]).status_code == 404
    assert client.get(paid["Location"]).context["statement"].you_owe == D("25.00")

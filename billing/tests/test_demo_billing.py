"""The demo's billing: a working A/R with a denial and an underpayment, its ledger balanced,
loaded once."""

from decimal import Decimal

from billing import ledger, reports
from billing.models import Charge, Claim
from demo.billing import billing_seed
from demo.practice import practice_seed
from demo.schedule import schedule_seed
from practice.models import Patient
from tests.fixtures import in_clinic


def test_the_demo_gives_a_biller_a_working_ar_a_denial_and_an_underpayment(acme):
    with in_clinic(acme):
        practice_seed("acme")
        schedule_seed("acme")
        first = billing_seed("acme")
        assert first["charges"] > 20 and first["claims"] > 3
        assert Charge.objects.filter(status="self_pay").exists() or first["charges"]
        statuses = set(Claim.objects.values_list("status", flat=True))
        assert {"submitted", "paid", "denied"} <= statuses
        aging = reports.ar_aging()
        balances = sum(
            (ledger.patient_balance(patient=p).total for p in Patient.objects.all()), Decimal(0)
        )
        assert aging.total == balances > 0
        [denial] = reports.denials()[:1]
        assert denial.reasons[0].code == "197" and denial.authorization_reason
        assert len(reports.underpayments()) >= 1
        assert billing_seed("acme") == first  # loaded once

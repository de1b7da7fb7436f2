"""The demo's billing: a working A/R with a denial and an underpayment, its ledger balanced,
loaded once; its claims built, scrubbed clean and submitted by the claims services (an 837P
per day), in New York and in Dublin (an address outside the US: N404, no state)."""

from decimal import Decimal

import pytest

from billing import ledger, reports
from billing.models import Charge, Claim, Submission
from billing.x12.validate import validate
from demo.billing import billing_seed
from demo.practice import practice_seed
from demo.schedule import schedule_seed
from practice.models import Patient
from tests.fixtures import in_clinic


@pytest.mark.parametrize("slug", ["acme", "liffey"])
def test_the_demo_gives_a_biller_a_working_ar_a_denial_and_an_underpayment(acme, slug):
    with in_clinic(acme):
        practice_seed(slug)
        schedule_seed(slug)
        first = billing_seed(slug)
        assert first["charges"] > 20 and first["claims"] > 3
        assert Charge.objects.filter(status="self_pay").exists() or first["charges"]
        statuses = set(Claim.objects.values_list("status", flat=True))
        assert {"submitted", "paid", "denied"} <= statuses and "draft" not in statuses
        assert not Claim.objects.filter(submission__isnull=True).exists()
        files = list(Submission.objects.values_list("x12", flat=True))
        assert len(files) > 1 and validate(files[0]).errors == ()
        if slug == "liffey":
            assert "*D02X285*IE~" in files[0]
        aging = reports.ar_aging()
        balances = sum(
            (ledger.patient_balance(patient=p).total for p in Patient.objects.all()), Decimal(0)
        )
        assert aging.total == balances > 0
        [denial] = reports.denials()[:1]
        assert denial.reasons[0].code == "197" and denial.authorization_reason
        assert len(reports.underpayments()) >= 1
        assert billing_seed(slug) == first  # loaded once

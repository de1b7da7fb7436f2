"""The A/R rollup computed from scratch, from the ledger alone (not from the balances the
triggers keep), to compare with what the triggers keep (`ArDay`, `ArPatient`)."""

from collections import defaultdict
from datetime import date
from decimal import Decimal

from billing.models import ArDay, ArPatient, LedgerEntry

ZERO = Decimal("0.00")


def rollup_from_scratch() -> tuple[dict, dict]:
    """Per (party, payer, age date) Σ entries, and per patient (Σ entries, open balances):
    an entry on a charge ages from the charge's service date and shares its balance with the
    charge's other entries of the same party and payer; one without a charge (money on the
    account) is a balance of its own, aged from the entry it reverses, else its own date."""
    days: dict[tuple[str, int | None, date], Decimal] = defaultdict(lambda: ZERO)
    balances: dict[tuple, Decimal] = defaultdict(lambda: ZERO)
    entries = LedgerEntry.objects.select_related("charge", "reverses").order_by("pk")
    for e in entries:
        if e.charge_id is not None:
            age = e.charge.service_date
            balance_key: tuple = (e.patient_id, e.charge_id, e.party, e.payer_id)
        else:
            age = e.reverses.posted_on if e.reverses_id else e.posted_on
            balance_key = (e.patient_id, "entry", e.pk)
        days[(e.party, e.payer_id, age)] += e.amount
        balances[balance_key] += e.amount
    patients: dict[int, list] = defaultdict(lambda: [ZERO, 0])
    for key, amount in balances.items():
        patients[key[0]][0] += amount
        patients[key[0]][1] += amount != 0
    return (
        {k: v for k, v in days.items() if v},
        {p: (a, n) for p, (a, n) in patients.items() if a or n},
    )


def rollup_kept() -> tuple[dict, dict]:
    """What the triggers keep, in the same shape."""
    days = {(d.party, d.payer_id, d.age_date): d.amount for d in ArDay.objects.exclude(amount=0)}
    patients = {
        p.patient_id: (p.amount, p.open_balances)
        for p in ArPatient.objects.all()
        if p.amount or p.open_balances
    }
    return days, patients

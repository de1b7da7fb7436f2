"""Money tests' data: a submitted claim built with the ORM from a billable visit's charges
(the claims services are the claims side's), and an 835 that answers it, written by
`billing.x12.remittance_writer` (so every file the tests post is one pyx12 reads)."""

import itertools
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from billing import ledger
from billing.models import Charge, Claim, ClaimLine
from billing.tests import factories
from billing.x12.remittance import (
    Adjustment,
    ClaimPayment,
    Party,
    Payment,
    ProviderAdjustment,
    Remittance,
    ServiceLine,
)
from billing.x12.remittance_writer import write_835
from scheduling.tests import factories as f

WHEN = datetime(2026, 12, 1, 9, 30)  # noqa: DTZ001 (the file's own stamp, not a clock)
_traces = itertools.count(1)


def submitted_claim(
    visit: factories.Visit | None = None,
    *,
    codes: tuple[str, ...] = ("97153",),
    sizes: dict[str, tuple[int, str]] | None = None,
) -> Claim:
    """A submitted claim of one charge per code of `visit` (4 units at 50.00 each, 200.00,
    unless `sizes` says code -> (units, amount)), each charge posted to its payer."""
    visit = visit or factories.billable_visit()
    if len(visit.payer.edi_payer_id) < 10:  # TRN03 is ten characters ("1" + the payer's EIN)
        visit.payer.edi_payer_id = f"1{visit.payer.pk:09d}"
        visit.payer.save(update_fields=["edi_payer_id"])
    charges = []
    for code in codes:
        service = visit.code if code == visit.code.code else f.service_code(code, 15)
        _, fee = factories.fee_schedule(payer=visit.payer, code=service)
        units, amount = (sizes or {}).get(code, (4, str(fee.charge_per_unit * 4)))
        charge = Charge.objects.create(
            appointment=visit.appointment,
            patient=visit.patient,
            episode=visit.episode,
            coverage=visit.coverage,
            payer=visit.payer,
            fee=fee,
            service_code=service,
            service_date=visit.appointment.start.date(),
            units=units,
            place_of_service="11",
            diagnosis_pointers=[1],
            amount=Decimal(amount),
            expected_allowed=fee.allowed_per_unit * units,
            rendering=visit.practitioner,
            rendering_npi=visit.practitioner.npi,
            authorization=visit.authorization,
            authorization_number=visit.authorization.number,
            status=Charge.Status.BILLED,
        )
        ledger.charge_post(charge=charge)
        charges.append(charge)
    claim = Claim.objects.create(
        patient=visit.patient,
        payer=visit.payer,
        coverage=visit.coverage,
        episode=visit.episode,
        rendering=visit.practitioner,
        total_charge=sum((c.amount for c in charges), Decimal(0)),
    )
    for number, charge in enumerate(charges, start=1):
        ClaimLine.objects.create(
            claim=claim, charge=charge, number=number, amount=charge.amount, units=charge.units
        )
    Claim.objects.filter(pk=claim.pk).update(status=Claim.Status.SUBMITTED)
    claim.refresh_from_db()
    return claim


@dataclass(frozen=True)
class Pay:
    """What the payer says of one line: paid, and its adjustments as (group, reason, amount)."""

    paid: str
    adjustments: tuple[tuple[str, str, str], ...] = ()
    remarks: tuple[str, ...] = ()
    reference: bool = True  # REF*6R sent back


def claim_payment(claim: Claim, pays: list[Pay], *, status: str = "1", sign: int = 1):
    lines = []
    for line, pay in zip(claim.lines.select_related("charge__service_code"), pays, strict=True):
        lines.append(
            ServiceLine(
                position=0,
                qualifier="HC",
                code=line.charge.service_code.code,
                modifiers=(),
                charge=sign * line.amount,
                paid=sign * Decimal(pay.paid),
                units=Decimal(line.units),
                service_date=line.charge.service_date,
                reference=str(line.pk) if pay.reference else "",
                adjustments=tuple(
                    Adjustment(g, r, sign * Decimal(a)) for g, r, a in pay.adjustments
                ),
                remarks=pay.remarks,
            )
        )
    return ClaimPayment(
        position=0,
        claim_id=claim.control_number,
        status=status,
        charge=sum((x.charge for x in lines), Decimal(0)),
        paid=sum((x.paid for x in lines), Decimal(0)),
        patient_responsibility=sum((x.patient_responsibility for x in lines), Decimal(0)),
        payer_claim_number=f"ICN{claim.pk}",
        patient_name="ROBIN PATIENT",
        member_id=claim.coverage.member_id,
        service_date=lines[0].service_date,
        lines=tuple(lines),
    )


def remittance_835(
    claims: list[ClaimPayment],
    *,
    payer_id: str,
    trace: str | None = None,
    plb: tuple[tuple[str, str, str], ...] = (),
    payment: Decimal | None = None,
) -> str:
    """An 835 of `claims`, with provider-level adjustments `plb` as (reason, reference,
    amount); its payment balances (Σ paid − Σ PLB) unless `payment` says otherwise."""
    adjustments = tuple(
        ProviderAdjustment(0, "1234567893", reason, reference, Decimal(amount))
        for reason, reference, amount in plb
    )
    paid = sum((c.paid for c in claims), Decimal(0)) - sum(
        (a.amount for a in adjustments), Decimal(0)
    )
    if payment is not None:
        paid = payment
    remittance = Remittance(
        control_number="0001",
        payment=Payment(abs(paid), "C" if paid >= 0 else "D", "ACH", "I", date(2026, 12, 1)),
        trace_number=trace or f"TRACE{next(_traces):06d}",
        payer_id=payer_id,
        payer=Party("PAYER"),
        payee=Party("ACME THERAPY", "XX", "1234567893"),
        production_date=date(2026, 11, 30),
        claims=tuple(claims),
        provider_adjustments=adjustments,
    )
    return write_835([remittance], when=WHEN)


def paying(claim: Claim, pays: list[Pay], *, trace: str | None = None, status: str = "1") -> str:
    """An 835 of the claim's payer answering `claim` line by line."""
    return remittance_835(
        [claim_payment(claim, pays, status=status)], payer_id=claim.payer.edi_payer_id, trace=trace
    )


def charge_of(
    visit: factories.Visit,
    code: str,
    amount: str,
    *,
    insured: bool = False,
    service_date: date | None = None,
) -> Charge:
    """A charge of `visit` for `code` (one per code), owed by the patient (self-pay) or by
    the payer (`insured`), posted to the ledger."""
    service = f.service_code(code, 15)
    charge = Charge.objects.create(
        appointment=visit.appointment,
        patient=visit.patient,
        episode=visit.episode,
        coverage=visit.coverage if insured else None,
        payer=visit.payer if insured else None,
        service_code=service,
        service_date=service_date or visit.appointment.start.date(),
        units=1,
        place_of_service="11",
        diagnosis_pointers=[1],
        amount=Decimal(amount),
        rendering=visit.practitioner,
        status=Charge.Status.BILLED if insured else Charge.Status.SELF_PAY,
    )
    ledger.charge_post(charge=charge)
    return charge

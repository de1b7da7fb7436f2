"""Demo billing: each clinic's billing profile, fee schedules (self-pay and per payer), an
episode per patient seen, the charges of every completed visit that can be charged (the rest
wait on the unbilled list, each with its reason), claims for the insured visits older than a
week, and an 835 per payer paying those older than two: most paid with a contractual write-off
(CO-45) and a coinsurance (PR-2), one denied CO-197 (no authorization) and one underpaid, so a
biller signing in sees a working A/R, a denial on the worklist and an underpayment.

Written through the billing services (fee schedules, episodes and charges: billing.charges;
payments: billing.posting, from an 835 the X12 writer makes); the claims are built with the
ORM until the claims services land. Deterministic; runs once per clinic."""

import random
from collections import defaultdict
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from billing.charges import (
    FeeSpec,
    charges_create_for_completed,
    episode_create,
    fee_schedule_create,
)
from billing.claims import claim_scrub, claims_build, claims_submit
from billing.models import BillingProfile, Charge, Claim, ClaimLine, LedgerEntry
from billing.posting import remittance_post
from billing.x12 import remittance as x12
from billing.x12.remittance_writer import write_835
from practice.models import Coverage, Patient, Payer, ServiceCode
from scheduling.models import Appointment

CENT = Decimal("0.01")

# clinic -> (legal name, NPI, tax id, city, state, postal code, country, diagnoses by rank)
PROFILES = {
    "acme": (
        "Acme Therapy LLC", "1234567893", "123456789", "New York", "NY", "10001", "US",
        ("F84.0", "F80.2"),
    ),
    "liffey": (
        "Liffey Heart Clinic Ltd", "1497758544", "987654321", "Dublin", "", "D02X285", "IE",
        ("I48.91", "I10"),
    ),
}  # fmt: skip
# code -> (charge per unit, expected allowed per unit), clinic's currency
FEES = {
    "97151": ("60.00", "48.00"), "97153": ("32.00", "25.00"), "97155": ("45.00", "36.00"),
    "97156": ("40.00", "32.00"), "97157": ("18.00", "14.00"),
    "99203": ("150.00", "110.00"), "99213": ("95.00", "70.00"), "93000": ("45.00", "30.00"),
    "93306": ("380.00", "260.00"),
}  # fmt: skip
SELF_PAY_DISCOUNT = Decimal("0.80")


@transaction.atomic
def billing_seed(slug: str) -> dict[str, int]:
    if BillingProfile.objects.exists():
        return _counts()
    rng = random.Random(f"billing-{slug}")
    legal, npi, tin, city, state, postal, country, diagnoses = PROFILES.get(slug, PROFILES["acme"])
    BillingProfile.objects.create(
        legal_name=legal, npi=npi, tax_id=tin, city=city, state=state, address_line1="1 Main St",
        postal_code=postal, country=country, contact_name="Billing Office",
        contact_phone="2125550100" if country == "US" else "35315550100",
        submitter_id=f"{slug.upper()}01", receiver_name="Demo Clearinghouse",
        receiver_id="CLEARHOUSE",
    )  # fmt: skip
    _fee_schedules()
    _episodes(diagnoses)
    charges_create_for_completed()
    claims = _claims()
    _payments(rng, claims)
    return _counts()


def _counts() -> dict[str, int]:
    return {
        "charges": Charge.objects.count(),
        "claims": Claim.objects.count(),
        "ledger": LedgerEntry.objects.count(),
    }


def _fee_schedules() -> None:
    """Self-pay (the clinic's default) at a discount, and one schedule per payer."""
    start = timezone.localdate().replace(month=1, day=1) - timedelta(days=366)
    codes = list(ServiceCode.objects.filter(code__in=FEES))
    for payer in [None, *Payer.objects.all()]:
        specs = []
        for code in codes:
            charge, allowed = (Decimal(v) for v in FEES[code.code])
            if payer is None:
                charge = allowed = (charge * SELF_PAY_DISCOUNT).quantize(CENT)
            specs.append(
                FeeSpec(service_code=code, charge_per_unit=charge, allowed_per_unit=allowed)
            )
        fee_schedule_create(
            name=f"{payer.name if payer else 'Self-pay'} fees", payer=payer, effective_from=start,
            fees=specs,
        )  # fmt: skip


def _episodes(diagnoses: tuple[str, ...]) -> None:
    """One active episode per patient seen, under their primary coverage (none: self-pay)."""
    patients = set(
        Appointment.objects.filter(status="completed").values_list("patient_id", flat=True)
    )
    coverages = {
        c.patient_id: c
        for c in Coverage.objects.filter(patient_id__in=patients, is_active=True)
        .select_related("patient")
        .order_by("-id")
    }
    start = timezone.localdate() - timedelta(days=180)
    for patient_id in sorted(patients):
        coverage = coverages.get(patient_id)
        patient = coverage.patient if coverage else Patient.objects.get(pk=patient_id)
        episode_create(
            patient=patient, start_date=max(start, coverage.effective_from) if coverage else start,
            diagnoses=diagnoses, coverage=coverage, title="Care plan",
            referring_provider_name="Referring, Rita",
        )  # fmt: skip


def _claims() -> list[Claim]:
    """The insured charges older than a week, on claims as a biller makes them with the claims
    services: built (one per patient, payer and rendering provider), scrubbed, and submitted in
    one 837P per day, two days after the claims' last visit. A claim the scrubber finds fault
    with stays a draft with its findings, as it would for the biller."""
    today = timezone.localdate()
    charges = list(
        Charge.objects.filter(
            status=Charge.Status.OPEN,
            payer__isnull=False,
            service_date__lte=today - timedelta(days=7),
        ).values_list("pk", flat=True)
    )
    if not charges:
        return []
    by_day: dict = defaultdict(list)
    for claim in claims_build(charges=charges):
        last = claim.lines.aggregate(last=Max("charge__service_date"))["last"]
        by_day[last + timedelta(days=2)].append(claim)
    submitted = []
    for day, group in sorted(by_day.items()):
        ready = [c for c in group if claim_scrub(claim=c, today=day).status == Claim.Status.READY]
        if ready:
            claims_submit(claims=ready, now=timezone.make_aware(datetime.combine(day, time(9))))
            submitted += ready
    for claim in submitted:
        claim.refresh_from_db()
    return submitted


def _payments(rng: random.Random, claims: list[Claim]) -> None:
    """One 835 per payer for the claims older than two weeks, posted by billing.posting: the
    first claim denied CO-197, the second underpaid, most of the others paid."""
    cutoff = timezone.localdate() - timedelta(days=14)
    by_payer: dict[int, list[x12.ClaimPayment]] = defaultdict(list)
    denied = underpaid = False
    for claim in claims:
        lines = list(claim.lines.select_related("charge__service_code").order_by("number"))
        if any(line.charge.service_date > cutoff for line in lines):
            continue
        if not denied:
            pays, denied = [_denied(line) for line in lines], True
        elif not underpaid:
            pays, underpaid = [line_paid(line, rate=Decimal("0.60")) for line in lines], True
        elif rng.random() < 0.8:
            pays = [line_paid(line, rate=Decimal("0.80")) for line in lines]
        else:
            continue  # still waiting on the payer
        by_payer[claim.payer_id].append(claim_payment(claim, pays))
    payers = Payer.objects.in_bulk(list(by_payer))
    for number, (payer_id, paid) in enumerate(sorted(by_payer.items()), start=1):
        remittance_post(
            text=era(paid, payer=payers[payer_id], trace=f"DEMO{payer_id:04d}{number:04d}"),
            file_name=f"demo-{payer_id}.835",
        )


def _denied(line: ClaimLine) -> x12.ServiceLine:
    return _service_line(line, paid=Decimal(0), adjustments=[("CO", "197", line.amount)],
                         remarks=("N54",))  # fmt: skip


def line_paid(line: ClaimLine, *, rate: Decimal) -> x12.ServiceLine:
    """The payer pays `rate` of the expected allowed amount, the patient owes 20% of it (PR-2,
    coinsurance) and the rest of the charge is written off (CO-45): at a rate under 0.80 what
    the payer allowed is short of the fee schedule (an underpayment)."""
    allowed = line.charge.expected_allowed or line.amount
    paid = (allowed * rate).quantize(CENT)
    share = (allowed * Decimal("0.20")).quantize(CENT)
    adjustments = [("CO", "45", line.amount - paid - share), ("PR", "2", share)]
    return _service_line(line, paid=paid, adjustments=[a for a in adjustments if a[2]])


def _service_line(line: ClaimLine, *, paid: Decimal, adjustments, remarks=()) -> x12.ServiceLine:
    return x12.ServiceLine(
        position=0, qualifier="HC", code=line.charge.service_code.code,
        modifiers=tuple(m for m in line.charge.modifiers.split(":") if m), charge=line.amount,
        paid=paid, units=Decimal(line.units), service_date=line.charge.service_date,
        reference=str(line.pk), adjustments=tuple(x12.Adjustment(*a) for a in adjustments),
        remarks=tuple(remarks),
    )  # fmt: skip


def claim_payment(claim: Claim, lines: list[x12.ServiceLine]) -> x12.ClaimPayment:
    paid = sum((x.paid for x in lines), Decimal(0))
    return x12.ClaimPayment(
        position=0, claim_id=claim.control_number, status="1" if paid else "4",
        charge=sum((x.charge for x in lines), Decimal(0)), paid=paid,
        patient_responsibility=sum((x.patient_responsibility for x in lines), Decimal(0)),
        payer_claim_number=f"ICN{claim.pk}", patient_name="DEMO PATIENT",
        member_id=claim.coverage.member_id, service_date=lines[0].service_date,
        lines=tuple(lines),
    )  # fmt: skip


def era(claims: list[x12.ClaimPayment], *, payer: Payer, trace: str) -> str:
    """An 835 of `payer` paying `claims` (also the bench's)."""
    paid = sum((c.paid for c in claims), Decimal(0))
    today = timezone.localdate()
    profile = BillingProfile.objects.filter(pk=1).first()
    remittance = x12.Remittance(
        control_number="0001",
        payment=x12.Payment(abs(paid), "C" if paid >= 0 else "D", "ACH", "I", today),
        trace_number=trace,
        # TRN03 is ten characters ("1" + an EIN, usually); a shorter EDI id is padded, so the
        # remittance names no payer we know and matches its claims by control number alone
        payer_id=payer.edi_payer_id if len(payer.edi_payer_id) >= 10 else f"1{payer.pk:09d}",
        payer=x12.Party(payer.name[:60].upper()),
        payee=x12.Party("CLINIC", "XX", getattr(profile, "npi", "") or "1234567893"),
        production_date=today,
        claims=tuple(claims),
    )
    return write_835([remittance], when=datetime.combine(today, time(9)))

"""The 835 health care claim payment/advice (005010X221A1), read into plain dataclasses and
checked before anything is posted.

`parse_835` reads every transaction set of a file (pyx12 checks the structure against the
implementation guide; see reading.py), then checks what pyx12 does not: the money balances on
every service line, every claim and the payment as a whole, and every adjustment and remark
code is one we can explain (reasons.py). Any finding refuses the whole file (`X12Refused`, each
finding naming its segment), so the posting built on this never posts half a file.

The payment's trace (TRN02 with the payer's id, TRN03) identifies a remittance: importing the
same trace twice must post once. `match_lines` pairs the paid lines with our claim lines.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Protocol, TypeVar

from billing.x12 import reasons
from billing.x12.reading import Finding, Segment, X12Refused, read_transactions
from billing.x12.structure import check_835

VERSION = "005010X221A1"
REVERSAL = "22"  # CLP02: reversal of a previous payment
ZERO = Decimal(0)


@dataclass(frozen=True)
class Adjustment:
    """One CAS adjustment: its group (CO, PR, OA, PI), its reason (CARC) and its amount."""

    group: str
    reason: str
    amount: Decimal
    quantity: Decimal | None = None

    def explain(self, remarks: Sequence[str] = ()) -> str:
        return reasons.explain(self.group, self.reason, tuple(remarks))


@dataclass(frozen=True)
class ServiceLine:
    """A 2110 service payment: SVC with its date, adjustments, our line reference and RARCs."""

    position: int = field(compare=False)  # of its SVC segment
    qualifier: str  # SVC01-1, e.g. HC (HCPCS/CPT)
    code: str
    modifiers: tuple[str, ...]
    charge: Decimal
    paid: Decimal
    units: Decimal  # SVC05, 1 when absent
    service_date: date | None  # DTM*472 (or the claim's DTM*232 when the line has none)
    reference: str  # REF*6R: our line reference, sent in the 837's REF*6R
    adjustments: tuple[Adjustment, ...] = ()
    remarks: tuple[str, ...] = ()  # LQ*HE
    allowed: Decimal | None = None  # AMT*B6
    billed_code: str = ""  # SVC06-2 when the payer paid another code than we billed

    @property
    def code_billed(self) -> str:
        """The code we billed: the payer's SVC06 when it changed it, SVC01 otherwise."""
        return self.billed_code or self.code

    @property
    def patient_responsibility(self) -> Decimal:
        return sum((adj.amount for adj in self.adjustments if adj.group == "PR"), ZERO)

    def explanations(self) -> list[str]:
        """Each adjustment in plain English, with the line's remark codes."""
        return [adj.explain(self.remarks) for adj in self.adjustments]


@dataclass(frozen=True)
class ClaimPayment:
    """A 2100 claim payment (CLP) with its claim-level adjustments and its service lines."""

    position: int = field(compare=False)  # of its CLP segment
    claim_id: str  # CLP01: our patient control number, sent in the 837's CLM01
    status: str  # CLP02 (1, 2, 3 processed, 4 denied, 22 reversal, ...)
    charge: Decimal
    paid: Decimal
    patient_responsibility: Decimal  # CLP05
    payer_claim_number: str  # CLP07
    filing_indicator: str = ""  # CLP06
    frequency: str = ""  # CLP09
    patient_name: str = ""  # NM1*QC
    member_id: str = ""
    service_date: date | None = None  # DTM*232
    adjustments: tuple[Adjustment, ...] = ()
    remarks: tuple[str, ...] = ()  # MOA03-07
    lines: tuple[ServiceLine, ...] = ()

    @property
    def is_reversal(self) -> bool:
        return self.status == REVERSAL

    @property
    def adjusted(self) -> Decimal:
        """Claim-level and line-level adjustments together."""
        total = sum((adj.amount for adj in self.adjustments), ZERO)
        return total + sum((adj.amount for line in self.lines for adj in line.adjustments), ZERO)


@dataclass(frozen=True)
class ProviderAdjustment:
    """One PLB adjustment: positive amounts reduce the payment, negative ones add to it."""

    position: int = field(compare=False)
    provider: str  # PLB01
    reason: str  # PLB03-1, e.g. WO (overpayment recovery), L6 (interest)
    reference: str  # PLB03-2, e.g. the claim a recovery is for
    amount: Decimal
    fiscal_period: date | None = field(default=None, compare=False)  # PLB02


@dataclass(frozen=True)
class Party:
    name: str
    id_qualifier: str = ""
    id: str = ""


@dataclass(frozen=True)
class Payment:
    amount: Decimal  # BPR02
    credit_debit: str  # BPR03: C or D
    method: str  # BPR04: ACH, CHK, BOP, FWT, NON
    handling: str  # BPR01: I (remittance with payment), H (notification only), ...
    date: date | None  # BPR16


@dataclass(frozen=True)
class Remittance:
    """One 835 transaction set: a payment, its trace, and the claims it pays."""

    control_number: str  # ST02
    payment: Payment
    trace_number: str  # TRN02: the check or EFT trace number
    payer_id: str  # TRN03
    payer: Party
    payee: Party
    production_date: date | None = None  # DTM*405
    claims: tuple[ClaimPayment, ...] = ()
    provider_adjustments: tuple[ProviderAdjustment, ...] = ()

    @property
    def trace(self) -> tuple[str, str]:
        """The idempotency key of the payment: (trace number, payer id)."""
        return (self.trace_number, self.payer_id)


def parse_835(text: str) -> list[Remittance]:
    """Every remittance (transaction set) of an 835 file, once the file is well formed, every
    amount balances and every code is known; `X12Refused` naming the segments otherwise."""
    transactions = read_transactions(
        text, functional_id="HP", version=VERSION, transaction="835", structure=check_835
    )
    findings: list[Finding] = []
    remittances = [_remittance(segments, findings) for segments in transactions]
    for remittance in remittances:
        findings.extend(balance_findings(remittance))
    if findings:
        raise X12Refused(findings)
    return remittances


def balance_findings(remittance: Remittance) -> list[Finding]:
    """Where the money does not add up: charge − paid = adjustments on every line and every
    claim; the payment (BPR02) = Σ claim payments (CLP04) − Σ provider adjustments (PLB)."""
    findings = []
    for claim in remittance.claims:
        for line in claim.lines:
            adjusted = sum((adj.amount for adj in line.adjustments), ZERO)
            if line.charge - line.paid != adjusted:
                findings.append(
                    Finding(
                        "SVC",
                        line.position,
                        f"line {line.code}: charge {line.charge} − paid {line.paid} = "
                        f"{line.charge - line.paid}, but its adjustments add up to {adjusted}",
                    )
                )
        if claim.charge - claim.paid != claim.adjusted:
            findings.append(
                Finding(
                    "CLP",
                    claim.position,
                    f"claim {claim.claim_id}: charge {claim.charge} − paid {claim.paid} = "
                    f"{claim.charge - claim.paid}, but its adjustments add up to {claim.adjusted}",
                )
            )
    paid = sum((claim.paid for claim in remittance.claims), ZERO)
    withheld = sum((adj.amount for adj in remittance.provider_adjustments), ZERO)
    amount = remittance.payment.amount
    if remittance.payment.credit_debit == "D":
        amount = -amount
    if amount != paid - withheld:
        plbs = sorted({adj.position for adj in remittance.provider_adjustments})
        named = f" (PLB at segment {', '.join(map(str, plbs))})" if plbs else " (no PLB)"
        findings.append(
            Finding(
                "BPR",
                2,
                f"the payment {remittance.payment.amount} is not the claims' payments {paid} "
                f"less the provider adjustments {withheld}{named} (= {paid - withheld})",
            )
        )
    return findings


class ClaimLineLike(Protocol):
    """What `match_lines` needs of one of our claim lines."""

    @property
    def reference(self) -> str: ...  # the REF*6R we sent

    @property
    def code(self) -> str: ...

    @property
    def service_date(self) -> date: ...

    @property
    def units(self) -> Decimal: ...


Line = TypeVar("Line", bound=ClaimLineLike)


def match_lines(
    paid: Sequence[ServiceLine], ours: Sequence[Line]
) -> list[tuple[ServiceLine, Line | None]]:
    """Pair each paid line with one of our claim lines: by our line reference (REF*6R) first;
    for a paid line whose reference is missing or unknown (some payers drop it), by code, date
    of service and units. Each of our lines is used once; a paid line that matches none is
    paired with None, so the caller reports it instead of losing it."""
    by_reference = {line.reference: line for line in ours if line.reference}
    used: set[int] = set()
    pairs: list[tuple[ServiceLine, Line | None]] = []
    pending: list[int] = []
    for index, line in enumerate(paid):
        match = by_reference.get(line.reference) if line.reference else None
        if match is not None and id(match) not in used:
            used.add(id(match))
            pairs.append((line, match))
        else:
            pairs.append((line, None))
            pending.append(index)
    for index in pending:
        line = paid[index]
        for candidate in ours:
            if id(candidate) in used:
                continue
            if (candidate.code, candidate.service_date, candidate.units) == (
                line.code_billed,
                line.service_date,
                line.units,
            ):
                used.add(id(candidate))
                pairs[index] = (line, candidate)
                break
    return pairs


# Reading the segments ------------------------------------------------------------------------


@dataclass
class _Claim:
    """A claim being read: its segments until the next CLP."""

    clp: Segment
    segments: list[Segment] = field(default_factory=list)
    lines: list[list[Segment]] = field(default_factory=list)


def _remittance(segments: list[Segment], findings: list[Finding]) -> Remittance:
    header: dict[str, Segment] = {}
    payer = payee = Party("")
    production_date = None
    claims: list[_Claim] = []
    provider_adjustments: list[ProviderAdjustment] = []
    for seg in segments:
        loop = seg.loop
        if seg.id == "CLP":
            claims.append(_Claim(seg))
        elif loop == "2110":
            if seg.id == "SVC":
                claims[-1].lines.append([])
            claims[-1].lines[-1].append(seg)
        elif loop == "2100":
            claims[-1].segments.append(seg)
        elif seg.id in ("BPR", "TRN", "ST"):
            header[seg.id] = seg
        elif seg.id == "DTM" and loop == "HEADER" and seg.get(1) == "405":
            production_date = seg.date(2, findings)
        elif seg.id == "N1" and loop == "1000A":
            payer = Party(seg.get(2), seg.get(3), seg.get(4))
        elif seg.id == "N1" and loop == "1000B":
            payee = Party(seg.get(2), seg.get(3), seg.get(4))
        elif seg.id == "PLB":
            provider_adjustments.extend(_provider_adjustments(seg, findings))
    bpr, trn = header["BPR"], header["TRN"]
    payment = Payment(
        amount=bpr.amount(2, findings, name="payment amount"),
        credit_debit=bpr.get(3),
        method=bpr.get(4),
        handling=bpr.get(1),
        date=bpr.date(16, findings),
    )
    return Remittance(
        control_number=header["ST"].get(2),
        payment=payment,
        trace_number=trn.get(2),
        payer_id=trn.get(3),
        payer=payer,
        payee=payee,
        production_date=production_date,
        claims=tuple(_claim(claim, findings) for claim in claims),
        provider_adjustments=tuple(provider_adjustments),
    )


def _claim(claim: _Claim, findings: list[Finding]) -> ClaimPayment:
    clp = claim.clp
    patient_name = member_id = ""
    service_date = None
    adjustments: list[Adjustment] = []
    remarks: list[str] = []
    for seg in claim.segments:
        if seg.id == "NM1" and seg.get(1) == "QC":
            patient_name = " ".join(part for part in (seg.get(4), seg.get(3)) if part)
            member_id = seg.get(9)
        elif seg.id == "DTM" and seg.get(1) == "232":
            service_date = seg.date(2, findings)
        elif seg.id == "CAS":
            adjustments.extend(_adjustments(seg, findings))
        elif seg.id == "MOA":
            remarks.extend(_remarks(seg, [seg.get(n) for n in range(3, 8)], findings))
    return ClaimPayment(
        position=clp.position,
        claim_id=clp.get(1),
        status=clp.get(2),
        charge=clp.amount(3, findings, name="claim charge"),
        paid=clp.amount(4, findings, name="claim payment"),
        patient_responsibility=clp.amount(5, findings, name="patient responsibility"),
        payer_claim_number=clp.get(7),
        filing_indicator=clp.get(6),
        frequency=clp.get(9),
        patient_name=patient_name,
        member_id=member_id,
        service_date=service_date,
        adjustments=tuple(adjustments),
        remarks=tuple(remarks),
        lines=tuple(_line(line, service_date, findings) for line in claim.lines),
    )


def _line(segments: list[Segment], claim_date: date | None, findings: list[Finding]) -> ServiceLine:
    svc = segments[0]
    procedure = svc.components(1)
    billed = svc.components(6) if svc.get(6) else []
    service_date = None
    reference = ""
    allowed = None
    adjustments: list[Adjustment] = []
    remarks: list[str] = []
    for seg in segments[1:]:
        if seg.id == "DTM" and seg.get(1) in ("472", "150"):
            service_date = seg.date(2, findings)
        elif seg.id == "CAS":
            adjustments.extend(_adjustments(seg, findings))
        elif seg.id == "REF" and seg.get(1) == "6R":
            reference = seg.get(2)
        elif seg.id == "AMT" and seg.get(1) == "B6":
            allowed = seg.amount(2, findings, name="allowed amount")
        elif seg.id == "LQ" and seg.get(1) == "HE":
            remarks.extend(_remarks(seg, [seg.get(2)], findings))
    units = svc.amount(5, findings, name="units paid") if svc.get(5) else Decimal(1)
    return ServiceLine(
        position=svc.position,
        qualifier=procedure[0],
        code=procedure[1] if len(procedure) > 1 else "",
        modifiers=tuple(modifier for modifier in procedure[2:6] if modifier),
        charge=svc.amount(2, findings, name="line charge"),
        paid=svc.amount(3, findings, name="line payment"),
        units=units,
        service_date=service_date or claim_date,
        reference=reference,
        adjustments=tuple(adjustments),
        remarks=tuple(remarks),
        allowed=allowed,
        billed_code=billed[1] if len(billed) > 1 else "",
    )


def _adjustments(cas: Segment, findings: list[Finding]) -> list[Adjustment]:
    """A CAS segment's up to six (reason, amount, quantity) triples, each reason checked."""
    group = cas.get(1)
    adjustments = []
    for first in range(2, 20, 3):
        reason = cas.get(first)
        if not reason:
            continue
        if reason not in reasons.carc():
            findings.append(
                cas.finding(f"{group}-{reason}: '{reason}' is not a claim adjustment reason code")
            )
        amount = cas.amount(first + 1, findings, name="adjustment amount")
        quantity = cas.amount(first + 2, findings, name="quantity") if cas.get(first + 2) else None
        adjustments.append(Adjustment(group, reason, amount, quantity))
    return adjustments


def _remarks(seg: Segment, codes: list[str], findings: list[Finding]) -> list[str]:
    for code in codes:
        if code and code not in reasons.rarc():
            findings.append(seg.finding(f"'{code}' is not a remittance advice remark code"))
    return [code for code in codes if code]


def _provider_adjustments(plb: Segment, findings: list[Finding]) -> list[ProviderAdjustment]:
    adjustments = []
    period = plb.date(2, findings)
    for first in range(3, 15, 2):
        if not plb.get(first):
            continue
        identifier = plb.components(first)
        reference = identifier[1] if len(identifier) > 1 else ""
        if identifier[0] not in reasons.PROVIDER_ADJUSTMENTS:
            findings.append(
                plb.finding(f"'{identifier[0]}' is not a provider adjustment reason (PLB03-1)")
            )
        amount = plb.amount(first + 1, findings, name="provider adjustment amount")
        adjustments.append(
            ProviderAdjustment(
                plb.position,
                plb.get(1),
                identifier[0],
                reference,
                amount,
                period,
            )
        )
    return adjustments

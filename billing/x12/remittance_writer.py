"""An 835 written from our dataclasses: the tests' generated remittances (a claim set paid,
then read back) and, later, the demo's payments of its own claims. It writes what
`remittance.parse_835` reads, in the implementation guide's order, and nothing it does not.
"""

from datetime import date, datetime
from decimal import Decimal

from billing.x12.remittance import VERSION, ClaimPayment, Remittance

TERMINATOR = "~\n"


def write_835(
    remittances: list[Remittance],
    *,
    when: datetime,
    sender: str = "PAYER",
    receiver: str = "CLINIC",
    interchange: int = 1,
) -> str:
    """One interchange with one functional group holding each remittance as a transaction set."""
    stamp = when.strftime("%y%m%d"), when.strftime("%H%M")
    lines = [
        "ISA*00*          *00*          *ZZ*"
        f"{sender:<15}*ZZ*{receiver:<15}*{stamp[0]}*{stamp[1]}*^*00501*{interchange:09d}*0*T*:",
        f"GS*HP*{sender}*{receiver}*{when:%Y%m%d}*{stamp[1]}*{interchange}*X*{VERSION}",
    ]
    for remittance in remittances:
        body = _transaction(remittance)
        lines.append(f"ST*835*{remittance.control_number}")
        lines.extend(body)
        lines.append(f"SE*{len(body) + 2}*{remittance.control_number}")
    lines.append(f"GE*{len(remittances)}*{interchange}")
    lines.append(f"IEA*1*{interchange:09d}")
    return TERMINATOR.join(lines) + TERMINATOR


def _transaction(remittance: Remittance) -> list[str]:
    payment = remittance.payment
    paid_on = _day(payment.date or remittance.production_date or date(2000, 1, 1))
    body = [
        f"BPR*{payment.handling}*{_money(payment.amount)}*{payment.credit_debit}*"
        f"{payment.method}*CCP*01*999999999*DA*123456*{remittance.payer_id}**01*888888888*DA*"
        f"654321*{paid_on}",
        f"TRN*1*{remittance.trace_number}*{remittance.payer_id}",
    ]
    if remittance.production_date:
        body.append(f"DTM*405*{_day(remittance.production_date)}")
    body += [
        f"N1*PR*{remittance.payer.name}",
        "N3*1 PAYER WAY",
        "N4*CHICAGO*IL*60601",
        "PER*BL*EDI SUPPORT*TE*8005551212",
        f"N1*PE*{remittance.payee.name}*{remittance.payee.id_qualifier or 'XX'}*"
        f"{remittance.payee.id}",
    ]
    if remittance.claims:
        body.append("LX*1")
    for claim in remittance.claims:
        body += _claim(claim)
    # One PLB per provider, up to six adjustments each: pyx12's 835 map allows a single FOOTER
    # loop, so a second PLB segment is refused there though the guide allows it.
    adjustments = remittance.provider_adjustments
    for provider in dict.fromkeys(adjustment.provider for adjustment in adjustments):
        mine = [adjustment for adjustment in adjustments if adjustment.provider == provider]
        for start in range(0, len(mine), 6):
            pairs = [
                adjustment.reason
                + (f":{adjustment.reference}" if adjustment.reference else "")
                + f"*{_money(adjustment.amount)}"
                for adjustment in mine[start : start + 6]
            ]
            body.append(f"PLB*{provider}*{paid_on[:4]}1231*{'*'.join(pairs)}")
    return body


def _claim(claim: ClaimPayment) -> list[str]:
    body = [
        f"CLP*{claim.claim_id}*{claim.status}*{_money(claim.charge)}*{_money(claim.paid)}*"
        f"{_money(claim.patient_responsibility)}*{claim.filing_indicator or '12'}*"
        f"{claim.payer_claim_number}*11*{claim.frequency or '1'}"
    ]
    body += [f"CAS*{adj.group}*{adj.reason}*{_money(adj.amount)}" for adj in claim.adjustments]
    first, _, last = claim.patient_name.partition(" ")
    body.append(f"NM1*QC*1*{last or first}*{first if last else ''}****MI*{claim.member_id}")
    if claim.service_date:
        body.append(f"DTM*232*{_day(claim.service_date)}")
    for line in claim.lines:
        procedure = ":".join((line.qualifier, line.code, *line.modifiers))
        body.append(
            f"SVC*{procedure}*{_money(line.charge)}*{_money(line.paid)}**{_number(line.units)}"
        )
        if line.service_date:
            body.append(f"DTM*472*{_day(line.service_date)}")
        body += [f"CAS*{adj.group}*{adj.reason}*{_money(adj.amount)}" for adj in line.adjustments]
        if line.reference:
            body.append(f"REF*6R*{line.reference}")
        if line.allowed is not None:
            body.append(f"AMT*B6*{_money(line.allowed)}")
        body += [f"LQ*HE*{remark}" for remark in line.remarks]
    return body


def _money(amount: Decimal) -> str:
    return f"{amount:f}"


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _day(day: date) -> str:
    return day.strftime("%Y%m%d")

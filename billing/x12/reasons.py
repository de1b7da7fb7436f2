"""Why a payer adjusted a charge, in plain English: the claim adjustment group codes (CAS01),
the Claim Adjustment Reason Codes (CARC, CAS02) and the Remittance Advice Remark Codes (RARC,
LQ*HE and MOA).

CARC and RARC are published by X12 and WPC and change several times a year. We ship, as data
(`codes/carc.csv`, `codes/rarc.csv`), the codes a clinic of ours meets, each with a short
description written for a biller; a code that is not in our lists is refused when an 835 is
read (a finding names it), because a code we cannot explain cannot be posted honestly. A
clinic that meets a new code adds a line to the list.
"""

import csv
from functools import cache
from pathlib import Path

CODES = Path(__file__).resolve().parent / "codes"

# CAS01 in 5010: who carries the adjustment.
GROUPS = {
    "CO": "contractual obligation: the clinic writes it off and may not bill the patient for it",
    "PR": "patient responsibility: the patient owes it",
    "OA": "other adjustment: neither the clinic's contract nor the patient's share",
    "PI": "payer-initiated reduction: the payer reduced it and the patient owes nothing for it",
}


def _read(name: str) -> dict[str, str]:
    with (CODES / name).open(newline="", encoding="utf-8") as rows:
        return {row["code"]: row["description"] for row in csv.DictReader(rows)}


@cache
def carc() -> dict[str, str]:
    """Claim Adjustment Reason Codes we know: code → "short name: description"."""
    return _read("carc.csv")


@cache
def rarc() -> dict[str, str]:
    """Remittance Advice Remark Codes we know: code → description."""
    return _read("rarc.csv")


def explain(group: str, reason: str, remarks: tuple[str, ...] | list[str] = ()) -> str:
    """One adjustment as a sentence, e.g. CO-197 with N54: "CO-197 authorization absent: the
    payer says there was no prior authorization for this service (contractual obligation: ...).
    N54: the claim information does not match the pre-certified or authorized services."
    Unknown codes are named as unknown rather than guessed."""
    reason_text = carc().get(reason, f"unknown reason code {reason}")
    group_text = GROUPS.get(group, f"unknown group {group}")
    sentence = f"{group}-{reason} {reason_text} ({group_text})."
    for remark in remarks:
        sentence += f" {remark}: {rarc().get(remark, 'unknown remark code')}."
    return sentence


# PLB03-1 in 5010 (the 835's provider-level adjustment reasons), in a biller's words. The list
# is X12's own and short; a code not here is refused when an 835 is read, as an unknown CARC is.
PROVIDER_ADJUSTMENTS = {
    "50": "late charge",
    "51": "interest penalty charge",
    "72": "authorized return: money the clinic sent back to the payer",
    "90": "early payment allowance",
    "AH": "origination fee",
    "AM": "applied to borrower's account",
    "AP": "acceleration of benefits",
    "B2": "rebate",
    "B3": "recovery allowance",
    "BD": "bad debt adjustment",
    "BN": "bonus",
    "C5": "temporary allowance",
    "CR": "capitation interest",
    "CS": "adjustment (see the reference)",
    "CT": "capitation payment",
    "CV": "capital passthru",
    "CW": "certified registered nurse anesthetist passthru",
    "DM": "direct medical education passthru",
    "E3": "withholding",
    "FB": "forward balance: carried from or to another remittance",
    "FC": "fund allocation",
    "GO": "graduate medical education passthru",
    "HM": "hemophilia clotting factor supplement",
    "IP": "incentive premium payment",
    "IR": "internal revenue service withholding",
    "IS": "interim settlement",
    "J1": "nonreimbursable",
    "L3": "penalty",
    "L6": "interest owed: the payer pays interest on a late claim",
    "LE": "levy",
    "LS": "lump sum",
    "OA": "organ acquisition passthru",
    "OB": "offset for affiliated providers",
    "PI": "periodic interim payment",
    "PL": "payment final",
    "RA": "retro-activity adjustment",
    "RE": "return on equity",
    "SL": "student loan repayment",
    "TL": "third party liability",
    "WO": "overpayment recovery: the payer takes back what it overpaid (a recoupment)",
    "WU": "unspecified recovery",
}


def explain_provider_adjustment(reason: str, reference: str, amount) -> str:
    """One PLB adjustment as a sentence: what it is and which way the money went."""
    text = PROVIDER_ADJUSTMENTS.get(reason, f"unknown provider adjustment {reason}")
    way = "withheld from the payment" if amount > 0 else "added to the payment"
    about = f" (reference {reference})" if reference else ""
    return f"{reason} {text}{about}: {abs(amount)} {way}."

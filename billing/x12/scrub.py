"""The claim scrubber: what a payer rejects that pyx12 does not check.

pyx12 checks the file's grammar (`validate.py`); a file can be perfectly formed and still be
refused or paid wrong: a total that is not the sum of its lines, a pointer to a diagnosis the
claim does not have, an NPI with a bad check digit, services outside the authorization, more
units than are left, a claim past the payer's filing limit. Each finding names the field of our
values (`claims[0].lines[1].diagnosis_pointers`), the loop and element of the file
(`2400 SV107`) and how to fix it, so the biller's list and an API's 400 can point at it.

What the file does not say comes in as parameters: whether the payer requires an
authorization, the authorization's window and units left, the payer's filing limit, and the
day of submission (never the clock).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from stdnum import luhn

from billing.x12.claims import FREQUENCY_CODES, Claim, ClaimBatch, Provider

MAX_LINES = 50
MAX_DIAGNOSES = 12
MAX_POINTERS = 4
MAX_MODIFIERS = 4
# ICD-10-CM as written: a letter, a digit, a digit or letter, then up to four after the dot.
ICD10CM = re.compile(r"[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?")
# An NPI is checked with the Luhn formula over the card-issuer prefix 80840 and its 10 digits.
NPI = re.compile(r"[12][0-9]{9}")
NPI_PREFIX = "80840"


@dataclass(frozen=True)
class Finding:
    code: str
    field: str  # in our values: claims[0].lines[1].diagnosis_pointers
    location: str  # in the file: 2400 SV107
    message: str  # what is wrong and how to fix it


@dataclass(frozen=True)
class AuthorizationWindow:
    """The prior authorization a claim bills against, as the ledger knows it."""

    number: str
    start: date
    end: date
    units_left: Decimal | None = None  # None: the authorization does not count units


@dataclass(frozen=True)
class ClaimRules:
    """What the scrubber must know about a claim's payer and authorization."""

    payer_requires_authorization: bool = False
    authorization: AuthorizationWindow | None = None
    filing_limit_days: int | None = None  # None: no timely-filing limit known


def npi_is_valid(npi: str) -> bool:
    """Ten digits starting with 1 or 2 whose Luhn check digit holds with the 80840 prefix."""
    return bool(NPI.fullmatch(npi)) and luhn.is_valid(NPI_PREFIX + npi)


def _npi(npi: str, field: str, location: str, who: str) -> list[Finding]:
    if npi_is_valid(npi):
        return []
    return [
        Finding(
            "npi-invalid",
            field,
            location,
            f"The {who}'s NPI {npi!r} is not a valid NPI (ten digits, check digit by Luhn with "
            "prefix 80840): copy it again from NPPES.",
        )
    ]


def _providers(claim: Claim, at: str) -> list[Finding]:
    found = []
    people: tuple[tuple[Provider | None, str, str, str], ...] = (
        (claim.referring, "referring", "2310A NM109", "referring provider"),
        (claim.rendering, "rendering", "2310B NM109", "rendering provider"),
        (claim.supervising, "supervising", "2310D NM109", "supervising provider"),
    )
    for person, name, location, who in people:
        if person is not None:
            found += _npi(person.npi, f"{at}.{name}.npi", location, who)
    return found


def _diagnoses(claim: Claim, at: str) -> list[Finding]:
    found = []
    if not claim.diagnoses:
        found.append(
            Finding(
                "diagnosis-missing",
                f"{at}.diagnoses",
                "2300 HI01",
                "The claim has no diagnosis: add the episode's ICD-10-CM diagnoses.",
            )
        )
    if len(claim.diagnoses) > MAX_DIAGNOSES:
        found.append(
            Finding(
                "diagnoses-too-many",
                f"{at}.diagnoses",
                "2300 HI",
                f"The claim has {len(claim.diagnoses)} diagnoses; an 837P holds at most "
                f"{MAX_DIAGNOSES}: keep the {MAX_DIAGNOSES} the lines point to.",
            )
        )
    for rank, code in enumerate(claim.diagnoses):
        if not ICD10CM.fullmatch(code):
            found.append(
                Finding(
                    "diagnosis-format",
                    f"{at}.diagnoses[{rank}]",
                    f"2300 HI{rank + 1:02d}-02",
                    f"{code!r} is not an ICD-10-CM code (a letter, a digit, a digit or letter, "
                    "then up to four characters after the dot, e.g. F84.0).",
                )
            )
    return found


def _authorization(claim: Claim, at: str, rules: ClaimRules) -> list[Finding]:
    found = []
    window = rules.authorization
    if rules.payer_requires_authorization and not claim.prior_authorization:
        found.append(
            Finding(
                "authorization-missing",
                f"{at}.prior_authorization",
                "2300 REF02 (G1)",
                "The payer requires a prior authorization: record the authorization number "
                "on the patient's coverage and bill under it.",
            )
        )
    if window is None:
        return found
    if claim.prior_authorization and claim.prior_authorization != window.number:
        found.append(
            Finding(
                "authorization-mismatch",
                f"{at}.prior_authorization",
                "2300 REF02 (G1)",
                f"The claim names authorization {claim.prior_authorization!r} but the services "
                f"were authorized under {window.number!r}: bill the authorization in force.",
            )
        )
    for index, line in enumerate(claim.lines):
        if not window.start <= line.service_date <= window.end:
            found.append(
                Finding(
                    "authorization-window",
                    f"{at}.lines[{index}].service_date",
                    "2400 DTP03 (472)",
                    f"Service on {line.service_date.isoformat()} is outside authorization "
                    f"{window.number} ({window.start.isoformat()} to {window.end.isoformat()}): "
                    "get the authorization extended or a new one before billing this line.",
                )
            )
    billed = sum((line.units for line in claim.lines), Decimal(0))
    if window.units_left is not None and billed > window.units_left:
        found.append(
            Finding(
                "units-exceed-authorization",
                f"{at}.lines",
                "2400 SV104",
                f"The claim bills {billed} units but authorization {window.number} has "
                f"{window.units_left} left: bill no more than are left or ask the payer for more.",
            )
        )
    return found


def _lines(claim: Claim, at: str) -> list[Finding]:
    found = []
    if not claim.lines:
        found.append(
            Finding("lines-missing", f"{at}.lines", "2400 LX", "The claim has no service line.")
        )
    if len(claim.lines) > MAX_LINES:
        found.append(
            Finding(
                "lines-too-many",
                f"{at}.lines",
                "2400 LX",
                f"The claim has {len(claim.lines)} lines; an 837P claim holds at most "
                f"{MAX_LINES}: split it into claims of {MAX_LINES} lines or fewer.",
            )
        )
    for index, line in enumerate(claim.lines):
        here = f"{at}.lines[{index}]"
        pointers = line.diagnosis_pointers
        if not pointers:
            found.append(
                Finding(
                    "pointer-missing",
                    f"{here}.diagnosis_pointers",
                    "2400 SV107",
                    "The line points to no diagnosis: point it at the diagnosis it treats.",
                )
            )
        if len(pointers) > MAX_POINTERS:
            found.append(
                Finding(
                    "pointers-too-many",
                    f"{here}.diagnosis_pointers",
                    "2400 SV107",
                    f"The line has {len(pointers)} diagnosis pointers; keep at most "
                    f"{MAX_POINTERS}, the most relevant first.",
                )
            )
        bad = [p for p in pointers if not 1 <= p <= len(claim.diagnoses)]
        if bad:
            found.append(
                Finding(
                    "pointer-out-of-range",
                    f"{here}.diagnosis_pointers",
                    "2400 SV107",
                    f"Pointer {', '.join(map(str, bad))} names no diagnosis: the claim has "
                    f"{len(claim.diagnoses)}, so pointers run from 1 to {len(claim.diagnoses)}.",
                )
            )
        if len(line.modifiers) > MAX_MODIFIERS:
            found.append(
                Finding(
                    "modifiers-too-many",
                    f"{here}.modifiers",
                    "2400 SV101-03",
                    f"A line carries at most {MAX_MODIFIERS} modifiers; it has "
                    f"{len(line.modifiers)}.",
                )
            )
        if line.charge <= 0 or line.units <= 0:
            found.append(
                Finding(
                    "line-empty",
                    f"{here}.charge" if line.charge <= 0 else f"{here}.units",
                    "2400 SV102" if line.charge <= 0 else "2400 SV104",
                    "A line bills a positive charge for a positive number of units.",
                )
            )
    return found


def _claim(claim: Claim, at: str, rules: ClaimRules, submission_date: date) -> list[Finding]:
    found = []
    total = sum((line.charge for line in claim.lines), Decimal(0))
    if claim.total_charge != total:
        found.append(
            Finding(
                "claim-total",
                f"{at}.total_charge",
                "2300 CLM02",
                f"The claim's total {claim.total_charge} is not the sum of its lines ({total}): "
                "the total must equal the sum of SV102.",
            )
        )
    if claim.frequency_code not in FREQUENCY_CODES:
        found.append(
            Finding(
                "frequency-code",
                f"{at}.frequency_code",
                "2300 CLM05-03",
                "Frequency is 1 (original), 7 (replacement) or 8 (void).",
            )
        )
    elif claim.frequency_code in ("7", "8") and not claim.original_claim_ref:
        found.append(
            Finding(
                "original-claim-missing",
                f"{at}.original_claim_ref",
                "2300 REF02 (F8)",
                "A replacement or void names the claim it replaces: give the payer's claim "
                "number from the original claim's remittance.",
            )
        )
    found += _diagnoses(claim, at)
    found += _lines(claim, at)
    found += _providers(claim, at)
    found += _authorization(claim, at, rules)
    if rules.filing_limit_days is not None:
        deadline = timedelta(days=rules.filing_limit_days)
        for index, line in enumerate(claim.lines):
            if submission_date > line.service_date + deadline:
                found.append(
                    Finding(
                        "timely-filing",
                        f"{at}.lines[{index}].service_date",
                        "2400 DTP03 (472)",
                        f"Service on {line.service_date.isoformat()} is past the payer's "
                        f"{rules.filing_limit_days}-day filing limit on "
                        f"{submission_date.isoformat()}: the payer will deny it; send proof of "
                        "timely filing or write the line off.",
                    )
                )
    return found


def scrub(
    batch: ClaimBatch,
    *,
    submission_date: date,
    rules: Mapping[str, ClaimRules] | None = None,
) -> list[Finding]:
    """Every finding in the batch, in file order; an empty list is a clean batch.

    `rules` gives each claim's payer rules and authorization by claim id (CLM01); a claim
    without an entry is checked with none (no authorization required, no filing limit)."""
    rules = rules or {}
    found = _npi(
        batch.billing_provider.npi, "billing_provider.npi", "2010AA NM109", "billing provider"
    )
    for index, claim in enumerate(batch.claims):
        found += _claim(
            claim, f"claims[{index}]", rules.get(claim.claim_id, ClaimRules()), submission_date
        )
    return found

"""The 837P professional claim (ASC X12 5010, 005010X222A1): our claim batch as plain values,
the builder that writes it and the reader that reads such a file back.

No models and no database here: the billing models map their claims onto these values, and
the same values come back from a file, so the scrubber (`scrub.py`) checks a claim we are about
to send and a file someone hands us alike. The file's date and its ISA/GS/ST control numbers are
inputs, never the clock or a counter of ours: the caller takes them from the clinic's sequence.

What the builder writes, loop by loop (the guide's names):

    ISA GS ST BHT                       envelope and the batch's reference, date and time
    1000A NM1*41 PER, 1000B NM1*40      submitter (us) and receiver (the clearinghouse)
    2000A HL*20 PRV, 2010AA NM1*85      billing provider: NPI, address, TIN (REF*EI)
    2000B HL*22 SBR, 2010BA NM1*IL      subscriber: member id, address, birth date and sex
    2010BB NM1*PR                       payer
    2000C HL*23 PAT, 2010CA NM1*QC      the patient, when not the subscriber (a child)
    2300 CLM REF*G1 REF*F8 HI           claim: total, place of service, frequency (1, 7 or 8 with
                                        the payer's original claim number), prior authorization,
                                        ranked ICD-10-CM diagnoses (ABK then ABF)
    2310A/B/D NM1*DN/82/DQ              referring, rendering (with PRV*PE) and supervising
    2400 LX SV1 DTP*472 REF*6R          lines: code and modifiers, charge, units, pointers, date
                                        of service, our line reference (835s answer with it)
    SE GE IEA                           trailers with their counts

Amounts are Decimal with two places (written without trailing zeros, as X12 prefers); ICD-10-CM
codes are kept as people write them ("F84.0") and written without the dot.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, time
from decimal import Decimal, InvalidOperation

import pyx12.errors
import pyx12.rawx12file
import pyx12.segment

IMPLEMENTATION = "005010X222A1"
ELEMENT = "*"
COMPONENT = ":"
SEGMENT = "~"
REPETITION = "^"
CENTS = Decimal("0.01")
# The largest ISA13/GS06/ST02 we write: nine digits.
MAX_CONTROL_NUMBER = 999_999_999
# CLM05-3: an original claim, its replacement, its void.
FREQUENCY_CODES = ("1", "7", "8")


@dataclass(frozen=True)
class Address:
    line1: str
    city: str
    state: str  # N402: US and Canadian addresses only
    postal_code: str
    line2: str = ""
    country: str = "US"  # ISO 3166-1 alpha-2; N404 is written for addresses outside the US


@dataclass(frozen=True)
class Submitter:
    """Us, as the clearinghouse knows us: `interchange_id` goes in ISA06/GS02, `identifier`
    in NM109 of 1000A (they often differ)."""

    name: str
    identifier: str
    contact_name: str
    phone: str
    interchange_id: str


@dataclass(frozen=True)
class Receiver:
    name: str
    identifier: str
    interchange_id: str


@dataclass(frozen=True)
class BillingProvider:
    """The clinic (an organisation): its group NPI, tax id (EIN) and pay-to address."""

    name: str
    npi: str
    tin: str
    address: Address
    taxonomy: str = ""


@dataclass(frozen=True)
class Subscriber:
    last_name: str
    first_name: str
    member_id: str
    address: Address
    birth_date: date
    sex: str  # M, F or U
    group_number: str = ""
    payer_responsibility: str = "P"  # SBR01: P primary, S secondary, T tertiary


@dataclass(frozen=True)
class Patient:
    """The patient when they are not the subscriber (2000C), e.g. a child on a parent's plan."""

    last_name: str
    first_name: str
    address: Address
    birth_date: date
    sex: str
    relationship: str = "19"  # PAT01: 19 child, 01 spouse, G8 other


@dataclass(frozen=True)
class Payer:
    name: str
    payer_id: str
    filing_indicator: str = "CI"  # SBR09: CI commercial, MC Medicaid, MB Medicare part B, ...


@dataclass(frozen=True)
class Provider:
    """A person named on a claim: referring, rendering or supervising."""

    last_name: str
    first_name: str
    npi: str
    taxonomy: str = ""  # PRV*PE: written (and read) for the rendering provider only


@dataclass(frozen=True)
class ServiceLine:
    line_ref: str  # REF*6R: our line item control number, which 835s answer with ("" for none)
    procedure_code: str
    charge: Decimal
    units: Decimal
    service_date: date
    diagnosis_pointers: tuple[int, ...]  # 1-4 ranks into the claim's diagnoses
    modifiers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Claim:
    claim_id: str  # CLM01: our patient control number
    total_charge: Decimal
    place_of_service: str
    subscriber: Subscriber
    payer: Payer
    diagnoses: tuple[str, ...]  # ICD-10-CM, principal first, up to 12
    lines: tuple[ServiceLine, ...]
    patient: Patient | None = None  # None: the subscriber is the patient
    frequency_code: str = "1"
    original_claim_ref: str = ""  # REF*F8: the payer's claim number, for frequency 7 and 8
    prior_authorization: str = ""
    referring: Provider | None = None
    rendering: Provider | None = None
    supervising: Provider | None = None


@dataclass(frozen=True)
class ClaimBatch:
    """One 837P interchange: one ISA/GS/ST holding claims of one billing provider."""

    submitter: Submitter
    receiver: Receiver
    billing_provider: BillingProvider
    claims: tuple[Claim, ...]
    interchange_control_number: int
    group_control_number: int
    transaction_control_number: int
    reference: str  # BHT03: the batch's own id
    created_on: date  # the clinic's local date and time of the file
    created_at: time
    production: bool = False  # ISA15: P or T


class X12FormatError(ValueError):
    """A value that cannot be written in X12, or a file that is not an 837P we can read.

    `segment` and `position` (the segment's ordinal in the file, ISA = 1) say where, so an
    upload can be refused with a 400 naming the segment."""

    def __init__(self, message: str, *, segment: str = "", position: int = 0) -> None:
        super().__init__(message)
        self.segment = segment
        self.position = position


# --- writing -----------------------------------------------------------------------------


def _text(value: str, what: str) -> str:
    """A value as an element: refused when it holds a delimiter, which would shift every
    element after it."""
    for mark in (ELEMENT, COMPONENT, SEGMENT, REPETITION, "\n", "\r"):
        if mark in value:
            raise X12FormatError(f"{what} may not contain {mark!r}: {value!r}")
    return value


def amount(value: Decimal) -> str:
    """Money with two places, written as X12 likes it: 480, 12.5, 12.34. A float, or a third
    place, is refused rather than rounded: the claim's total must stay the sum of its lines."""
    if not isinstance(value, Decimal) or not value.is_finite() or value != value.quantize(CENTS):
        raise X12FormatError(f"an amount is a Decimal with at most two places: {value!r}")
    text = format(value.quantize(CENTS), "f")
    return text.rstrip("0").rstrip(".")


def quantity(value: Decimal) -> str:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise X12FormatError(f"units are a Decimal: {value!r}")
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def control_number(value: int, what: str) -> str:
    """ISA13, GS06 and ST02: nine digits, zero-padded."""
    if not 1 <= value <= MAX_CONTROL_NUMBER:
        raise X12FormatError(f"{what} must be between 1 and {MAX_CONTROL_NUMBER}: {value}")
    return f"{value:09d}"


def _icd(code: str) -> str:
    return code.replace(".", "").upper()


def _segment(*elements: str) -> str:
    """Trailing empty elements are dropped (X12 forbids them)."""
    parts = list(elements)
    while parts and parts[-1] == "":
        parts.pop()
    return ELEMENT.join(parts) + SEGMENT


def _address(address: Address) -> list[str]:
    return [
        _segment("N3", _text(address.line1, "address"), _text(address.line2, "address")),
        _segment(
            "N4",
            _text(address.city, "city"),
            _text(address.state, "state"),
            _text(address.postal_code, "postal code"),
            "" if address.country == "US" else _text(address.country, "country"),
        ),
    ]


def _person(code: str, last: str, first: str, qualifier: str, ident: str) -> str:
    return _segment(
        "NM1", code, "1", _text(last, "last name"), _text(first, "first name"),
        "", "", "", qualifier, _text(ident, "identifier"),
    )  # fmt: skip


def _claim_segments(claim: Claim) -> list[str]:
    if claim.frequency_code not in FREQUENCY_CODES:
        raise X12FormatError(f"frequency code must be one of {FREQUENCY_CODES}")
    out = [
        _segment(
            "CLM",
            _text(claim.claim_id, "claim id"),
            amount(claim.total_charge),
            "",
            "",
            COMPONENT.join(
                (_text(claim.place_of_service, "place of service"), "B", claim.frequency_code)
            ),
            "Y",
            "A",
            "Y",
            "Y",
        )  # fmt: skip
    ]
    if claim.prior_authorization:
        out.append(_segment("REF", "G1", _text(claim.prior_authorization, "authorization")))
    if claim.original_claim_ref:
        out.append(_segment("REF", "F8", _text(claim.original_claim_ref, "original claim")))
    codes = [
        f"{'ABK' if rank == 0 else 'ABF'}{COMPONENT}{_text(_icd(code), 'diagnosis')}"
        for rank, code in enumerate(claim.diagnoses)
    ]
    out.append(_segment("HI", *codes))
    if claim.referring:
        p = claim.referring
        out.append(_person("DN", p.last_name, p.first_name, "XX", p.npi))
    if claim.rendering:
        p = claim.rendering
        out.append(_person("82", p.last_name, p.first_name, "XX", p.npi))
        if p.taxonomy:
            out.append(_segment("PRV", "PE", "PXC", _text(p.taxonomy, "taxonomy")))
    if claim.supervising:
        p = claim.supervising
        out.append(_person("DQ", p.last_name, p.first_name, "XX", p.npi))
    for number, line in enumerate(claim.lines, start=1):
        procedure = COMPONENT.join(
            ["HC", _text(line.procedure_code, "procedure code")]
            + [_text(m, "modifier") for m in line.modifiers]
        )
        pointers = COMPONENT.join(str(p) for p in line.diagnosis_pointers)
        out += [
            _segment("LX", str(number)),
            _segment(
                "SV1", procedure, amount(line.charge), "UN", quantity(line.units), "", "", pointers
            ),
            _segment("DTP", "472", "D8", line.service_date.strftime("%Y%m%d")),
        ]
        if line.line_ref:
            out.append(_segment("REF", "6R", _text(line.line_ref, "line reference")))
    return out


def _hierarchy(batch: ClaimBatch) -> list[str]:
    """2000A and, under it, one 2000B (and 2000C) per run of claims of the same subscriber,
    payer and patient, in the batch's order (so reading the file back gives the same claims)."""
    provider = batch.billing_provider
    out = [_segment("HL", "1", "", "20", "1")]
    if provider.taxonomy:
        out.append(_segment("PRV", "BI", "PXC", _text(provider.taxonomy, "taxonomy")))
    out.append(
        _segment(
            "NM1",
            "85",
            "2",
            _text(provider.name, "billing provider"),
            "",
            "",
            "",
            "",
            "XX",
            _text(provider.npi, "NPI"),
        )  # fmt: skip
    )
    out += _address(provider.address)
    out.append(_segment("REF", "EI", _text(provider.tin, "TIN")))
    hl = 1
    previous: tuple[Subscriber, Payer, Patient | None] | None = None
    for claim in batch.claims:
        key = (claim.subscriber, claim.payer, claim.patient)
        if key != previous:
            previous = key
            sub, payer, patient = key
            hl += 1
            subscriber_hl = hl
            out += [
                _segment("HL", str(hl), "1", "22", "1" if patient else "0"),
                _segment(
                    "SBR",
                    sub.payer_responsibility,
                    "" if patient else "18",
                    _text(sub.group_number, "group number"),
                    "",
                    "",
                    "",
                    "",
                    "",
                    payer.filing_indicator,
                ),  # fmt: skip
                _person("IL", sub.last_name, sub.first_name, "MI", sub.member_id),
                *_address(sub.address),
                _segment("DMG", "D8", sub.birth_date.strftime("%Y%m%d"), sub.sex),
                _segment(
                    "NM1",
                    "PR",
                    "2",
                    _text(payer.name, "payer"),
                    "",
                    "",
                    "",
                    "",
                    "PI",
                    _text(payer.payer_id, "payer id"),
                ),  # fmt: skip
            ]
            if patient:
                hl += 1
                out += [
                    _segment("HL", str(hl), str(subscriber_hl), "23", "0"),
                    _segment("PAT", patient.relationship),
                    _segment(
                        "NM1",
                        "QC",
                        "1",
                        _text(patient.last_name, "last name"),
                        _text(patient.first_name, "first name"),
                    ),  # fmt: skip
                    *_address(patient.address),
                    _segment("DMG", "D8", patient.birth_date.strftime("%Y%m%d"), patient.sex),
                ]
        out += _claim_segments(claim)
    return out


def build_837p(batch: ClaimBatch) -> str:
    """The batch as an 837P file, one segment a line (`~` then a newline)."""
    isa13 = control_number(batch.interchange_control_number, "interchange control number")
    gs06 = control_number(batch.group_control_number, "group control number")
    st02 = control_number(batch.transaction_control_number, "transaction control number")
    sub, rcv = batch.submitter, batch.receiver
    for value, what in ((sub.interchange_id, "submitter"), (rcv.interchange_id, "receiver")):
        if not 1 <= len(value) <= 15:
            raise X12FormatError(f"the {what}'s interchange id has 1 to 15 characters")
    day, clock = batch.created_on, batch.created_at
    isa = _segment(
        "ISA", "00", " " * 10, "00", " " * 10,
        "ZZ", _text(sub.interchange_id, "submitter id").ljust(15),
        "ZZ", _text(rcv.interchange_id, "receiver id").ljust(15),
        day.strftime("%y%m%d"), clock.strftime("%H%M"), REPETITION, "00501", isa13, "0",
        "P" if batch.production else "T", COMPONENT,
    )  # fmt: skip
    transaction = [
        _segment("ST", "837", st02, IMPLEMENTATION),
        _segment(
            "BHT",
            "0019",
            "00",
            _text(batch.reference, "reference"),
            day.strftime("%Y%m%d"),
            clock.strftime("%H%M"),
            "CH",
        ),  # fmt: skip
        _segment(
            "NM1",
            "41",
            "2",
            _text(sub.name, "submitter"),
            "",
            "",
            "",
            "",
            "46",
            _text(sub.identifier, "submitter id"),
        ),  # fmt: skip
        _segment("PER", "IC", _text(sub.contact_name, "contact"), "TE", _text(sub.phone, "phone")),
        _segment(
            "NM1",
            "40",
            "2",
            _text(rcv.name, "receiver"),
            "",
            "",
            "",
            "",
            "46",
            _text(rcv.identifier, "receiver id"),
        ),  # fmt: skip
        *_hierarchy(batch),
    ]
    transaction.append(_segment("SE", str(len(transaction) + 1), st02))
    segments = [
        isa,
        _segment(
            "GS",
            "HC",
            sub.interchange_id,
            rcv.interchange_id,
            day.strftime("%Y%m%d"),
            clock.strftime("%H%M"),
            gs06,
            "X",
            IMPLEMENTATION,
        ),  # fmt: skip
        *transaction,
        _segment("GE", "1", gs06),
        _segment("IEA", "1", isa13),
    ]
    return "\n".join(segments) + "\n"


# --- reading -----------------------------------------------------------------------------


@dataclass
class _Cursor:
    """The file's segments with their ordinals, read one at a time."""

    segments: list[tuple[int, pyx12.segment.Segment]]
    index: int = 0

    def peek(self) -> str:
        if self.index >= len(self.segments):
            return ""
        return self.segments[self.index][1].get_seg_id() or ""

    def peek_value(self, ref: str) -> str:
        return _value(self.segments[self.index][1], ref) if self.peek() else ""

    def take(self, seg_id: str, qualifier: str = "") -> pyx12.segment.Segment:
        """The next segment, which must be `seg_id` (with `qualifier` in its first element)."""
        position = self.segments[self.index][0] if self.peek() else 0
        found = self.peek()
        if found != seg_id or (qualifier and self.peek_value("01") != qualifier):
            wanted = f"{seg_id}*{qualifier}" if qualifier else seg_id
            raise X12FormatError(
                f"expected {wanted} at segment {position}, found {found or 'the end'}",
                segment=found or seg_id,
                position=position,
            )
        self.index += 1
        return self.segments[self.index - 1][1]

    def position(self) -> int:
        return self.segments[self.index][0] if self.peek() else 0

    def until(self, *stops: str) -> list[tuple[int, pyx12.segment.Segment]]:
        """The rest of a loop: the segments up to the next one named in `stops` (or the end).
        Real files carry segments we do not model (PER, PAT, DTP, NTE, AMT, other REFs, other
        payers' loops): they are read past, never an error."""
        start = self.index
        while self.peek() and self.peek() not in stops:
            self.index += 1
        return self.segments[start : self.index]


_Loop = list[tuple[int, pyx12.segment.Segment]]


def _first(loop: _Loop, seg_id: str, qualifier: str = "") -> pyx12.segment.Segment | None:
    for _, seg in loop:
        if seg.get_seg_id() == seg_id and (not qualifier or _value(seg, "01") == qualifier):
            return seg
    return None


def _position(loop: _Loop, seg_id: str, qualifier: str = "") -> int:
    for position, seg in loop:
        if seg.get_seg_id() == seg_id and (not qualifier or _value(seg, "01") == qualifier):
            return position
    return 0


def _value(seg: pyx12.segment.Segment, ref: str) -> str:
    return (seg.get_value(ref) or "").strip()


def _date(seg: pyx12.segment.Segment, ref: str, position: int) -> date:
    text = _value(seg, ref)
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise X12FormatError(
            f"{ref} is not a CCYYMMDD date: {text!r}", segment=seg.get_seg_id() or "",
            position=position,
        ) from None  # fmt: skip


def _decimal(
    seg: pyx12.segment.Segment, ref: str, position: int, places: Decimal | None = None
) -> Decimal:
    text = _value(seg, ref)
    try:
        number = Decimal(text)
        if not number.is_finite():
            raise InvalidOperation
        return number.quantize(places) if places else number
    except InvalidOperation:
        raise X12FormatError(
            f"{ref} is not a number: {text!r}", segment=seg.get_seg_id() or "", position=position
        ) from None


def _read_address(loop: _Loop, where: str, position: int) -> Address:
    """The loop's N3 and N4, which our values require."""
    n3, n4 = _first(loop, "N3"), _first(loop, "N4")
    if n3 is None or n4 is None:
        raise X12FormatError(
            f"the {where} has no address (N3 and N4)", segment="N3" if n3 is None else "N4",
            position=position,
        )  # fmt: skip
    return Address(
        line1=_value(n3, "N301"),
        line2=_value(n3, "N302"),
        city=_value(n4, "N401"),
        state=_value(n4, "N402"),
        postal_code=_value(n4, "N403"),
        country=_value(n4, "N404") or "US",
    )


def _read_person(seg: pyx12.segment.Segment) -> Provider:
    return Provider(
        last_name=_value(seg, "NM103"), first_name=_value(seg, "NM104"), npi=_value(seg, "NM109")
    )


def _read_icd(text: str) -> str:
    return f"{text[:3]}.{text[3:]}" if len(text) > 3 else text


def _read_dmg(loop: _Loop, where: str, position: int) -> pyx12.segment.Segment:
    dmg = _first(loop, "DMG")
    if dmg is None:
        raise X12FormatError(
            f"the {where} has no birth date and sex (DMG)", segment="DMG", position=position
        )
    return dmg


def _read_line(cursor: _Cursor) -> ServiceLine:
    lx_position = cursor.position()
    cursor.take("LX")
    loop = cursor.until("LX", "CLM", "HL", "SE")
    # Only 2400's own segments: drug (2410 LIN), line providers (2420 NM1) and adjudication
    # (2430 SVD) loops carry REFs and DTPs of their own.
    ends = [i for i, (_, seg) in enumerate(loop) if seg.get_seg_id() in ("LIN", "NM1", "SVD")]
    own = loop[: ends[0]] if ends else loop
    sv1, dtp, ref = _first(own, "SV1"), _first(own, "DTP", "472"), _first(own, "REF", "6R")
    if sv1 is None or dtp is None:
        missing = "SV1" if sv1 is None else "DTP"
        raise X12FormatError(
            f"service line {lx_position} has no {missing}", segment=missing, position=lx_position
        )
    sv1_position, dtp_position = _position(own, "SV1"), _position(own, "DTP", "472")
    procedure = [_value(sv1, f"SV101-{n}") for n in range(1, 8)]
    pointers = _value(sv1, "SV107")
    try:
        pointer_ranks = tuple(int(p) for p in pointers.split(COMPONENT) if p)
    except ValueError:
        raise X12FormatError(
            f"SV107 holds pointers 1-12: {pointers!r}", segment="SV1", position=sv1_position
        ) from None
    return ServiceLine(
        line_ref=_value(ref, "REF02") if ref else "",
        procedure_code=procedure[1],
        modifiers=tuple(m for m in procedure[2:6] if m),
        charge=_decimal(sv1, "SV102", sv1_position, CENTS),
        units=_decimal(sv1, "SV104", sv1_position),
        service_date=_date(dtp, "DTP03", dtp_position),
        diagnosis_pointers=pointer_ranks,
    )


def _read_claim(
    cursor: _Cursor, subscriber: Subscriber, payer: Payer, patient: Patient | None
) -> Claim:
    position = cursor.position()
    clm = cursor.take("CLM")
    prior_authorization = original = ""
    diagnoses: list[str] = []
    providers: dict[str, Provider] = {}
    last_entity = ""
    for _, seg in cursor.until("LX", "CLM", "HL", "SE"):
        seg_id = seg.get_seg_id()
        if seg_id == "SBR":  # 2320: another payer's loops, whose NM1s are not ours
            break
        if seg_id == "REF" and _value(seg, "REF01") == "G1":
            prior_authorization = _value(seg, "REF02")
        elif seg_id == "REF" and _value(seg, "REF01") == "F8":
            original = _value(seg, "REF02")
        elif seg_id == "HI":
            diagnoses += [
                _read_icd(_value(seg, f"HI{n:02d}-2"))
                for n in range(1, 13)
                if _value(seg, f"HI{n:02d}-1") in ("ABK", "ABF")
            ]
        elif seg_id == "NM1":
            last_entity = _value(seg, "NM101")
            providers.setdefault(last_entity, _read_person(seg))
        elif seg_id == "PRV" and last_entity == "82":
            person = providers["82"]
            providers["82"] = replace(person, taxonomy=_value(seg, "PRV03"))
    cursor.until("LX", "CLM", "HL", "SE")
    lines = []
    while cursor.peek() == "LX":
        lines.append(_read_line(cursor))
    return Claim(
        claim_id=_value(clm, "CLM01"),
        total_charge=_decimal(clm, "CLM02", position, CENTS),
        place_of_service=_value(clm, "CLM05-1"),
        frequency_code=_value(clm, "CLM05-3"),
        subscriber=subscriber,
        payer=payer,
        patient=patient,
        diagnoses=tuple(diagnoses),
        lines=tuple(lines),
        original_claim_ref=original,
        prior_authorization=prior_authorization,
        referring=providers.get("DN"),
        rendering=providers.get("82"),
        supervising=providers.get("DQ"),
    )


def _segments(text: str) -> Iterator[tuple[int, pyx12.segment.Segment]]:
    """pyx12's raw segment reader (the delimiters come from the ISA), without its envelope
    bookkeeping, which fails on a misplaced trailer: the envelope is pyx12's validator's."""
    try:
        raw = pyx12.rawx12file.RawX12File(io.StringIO(text))
    except pyx12.errors.X12Error as error:
        raise X12FormatError(str(error), segment="ISA", position=1) from None
    seg_term, ele_term, subele_term, _, _ = raw.get_term()
    for position, line in enumerate(raw, start=1):
        yield position, pyx12.segment.Segment(line.strip(), seg_term, ele_term, subele_term)


def read_837p(text: str) -> ClaimBatch:
    """An 837P file (one ISA/GS/ST and one billing provider, as `build_837p` writes) back
    into a batch, so the scrubber can run on a file from anywhere.

    Segments and loops we do not model (PER, pay-to, PAT of a subscriber, DTPs, NTEs, other
    REFs, other payers' 2320/2330 loops, line-level providers and adjudication) are read past.
    What our values need and the file lacks is an X12FormatError naming the segment.
    Structure and codes are pyx12's to check (`validate.py`); this reads values."""
    cursor = _Cursor(list(_segments(text)))
    isa = cursor.take("ISA")
    gs = cursor.take("GS")
    st = cursor.take("ST")
    if _value(st, "ST01") != "837" or _value(gs, "GS08") != IMPLEMENTATION:
        raise X12FormatError(
            f"not an 837P ({IMPLEMENTATION}) file", segment="ST", position=cursor.position() - 1
        )
    bht_position = cursor.position()
    bht = cursor.take("BHT")
    submitter = cursor.take("NM1", "41")
    per = _first(cursor.until("NM1"), "PER")
    receiver = cursor.take("NM1", "40")
    cursor.until("HL")
    cursor.take("HL")
    prv = _first(cursor.until("NM1"), "PRV", "BI")
    provider_position = cursor.position()
    provider_nm1 = cursor.take("NM1", "85")
    provider_loop = cursor.until("NM1", "HL")  # 2010AB/AC (pay-to) follow, read past
    provider_address = _read_address(provider_loop, "billing provider", provider_position)
    tin = _first(provider_loop, "REF", "EI")
    if tin is None:
        raise X12FormatError(
            "the billing provider has no tax id (REF*EI)", segment="REF", position=provider_position
        )
    cursor.until("HL")
    claims: list[Claim] = []
    while cursor.peek() == "HL":
        hl_position = cursor.position()
        if cursor.peek_value("HL03") != "22":
            raise X12FormatError(
                "expected a subscriber (HL03 22): one billing provider per file",
                segment="HL",
                position=hl_position,
            )
        cursor.take("HL")
        sbr = _first(cursor.until("NM1"), "SBR")
        if sbr is None:
            raise X12FormatError("the subscriber has no SBR", segment="SBR", position=hl_position)
        nm1_position = cursor.position()
        nm1 = cursor.take("NM1", "IL")
        loop = cursor.until("NM1", "HL", "CLM")
        dmg = _read_dmg(loop, "subscriber", nm1_position)
        subscriber = Subscriber(
            last_name=_value(nm1, "NM103"),
            first_name=_value(nm1, "NM104"),
            member_id=_value(nm1, "NM109"),
            address=_read_address(loop, "subscriber", nm1_position),
            birth_date=_date(dmg, "DMG02", _position(loop, "DMG")),
            sex=_value(dmg, "DMG03"),
            group_number=_value(sbr, "SBR03"),
            payer_responsibility=_value(sbr, "SBR01"),
        )
        payer_nm1 = cursor.take("NM1", "PR")
        cursor.until("HL", "CLM")
        payer = Payer(
            name=_value(payer_nm1, "NM103"),
            payer_id=_value(payer_nm1, "NM109"),
            filing_indicator=_value(sbr, "SBR09"),
        )
        patient = None
        if cursor.peek() == "HL" and cursor.peek_value("HL03") == "23":
            hl_position = cursor.position()
            cursor.take("HL")
            pat = _first(cursor.until("NM1"), "PAT")
            if pat is None:
                raise X12FormatError("the patient has no PAT", segment="PAT", position=hl_position)
            qc_position = cursor.position()
            qc = cursor.take("NM1", "QC")
            loop = cursor.until("HL", "CLM")
            dmg = _read_dmg(loop, "patient", qc_position)
            patient = Patient(
                last_name=_value(qc, "NM103"),
                first_name=_value(qc, "NM104"),
                address=_read_address(loop, "patient", qc_position),
                birth_date=_date(dmg, "DMG02", _position(loop, "DMG")),
                sex=_value(dmg, "DMG03"),
                relationship=_value(pat, "PAT01"),
            )
        while cursor.peek() == "CLM":
            claims.append(_read_claim(cursor, subscriber, payer, patient))
    cursor.take("SE")
    group, transaction = _value(gs, "GS06"), _value(st, "ST02")
    try:
        numbers = int(_value(isa, "ISA13")), int(group), int(transaction)
    except ValueError:
        raise X12FormatError("control numbers must be digits", segment="ISA", position=1) from None
    created_on = _date(bht, "BHT04", bht_position)
    hhmm = _value(bht, "BHT05")
    try:
        created_at = time(int(hhmm[:2]), int(hhmm[2:4]))
    except ValueError:
        raise X12FormatError(
            f"BHT05 is not an HHMM time: {hhmm!r}", segment="BHT", position=bht_position
        ) from None
    return ClaimBatch(
        submitter=Submitter(
            name=_value(submitter, "NM103"),
            identifier=_value(submitter, "NM109"),
            contact_name=_value(per, "PER02") if per else "",
            phone=_value(per, "PER04") if per else "",
            interchange_id=_value(gs, "GS02"),
        ),
        receiver=Receiver(
            name=_value(receiver, "NM103"),
            identifier=_value(receiver, "NM109"),
            interchange_id=_value(gs, "GS03"),
        ),
        billing_provider=BillingProvider(
            name=_value(provider_nm1, "NM103"),
            npi=_value(provider_nm1, "NM109"),
            tin=_value(tin, "REF02"),
            address=provider_address,
            taxonomy=_value(prv, "PRV03") if prv else "",
        ),
        claims=tuple(claims),
        interchange_control_number=numbers[0],
        group_control_number=numbers[1],
        transaction_control_number=numbers[2],
        reference=_value(bht, "BHT03"),
        created_on=created_on,
        created_at=created_at,
        production=_value(isa, "ISA15") == "P",
    )

"""What the payer's side says of the claims we sent, before any money: the 999 implementation
acknowledgement (005010X231A1) accepts or rejects each 837 transaction set, naming the
segments and elements at fault; the 277CA claim acknowledgement (005010X214) accepts or rejects
each claim, by our claim id (the 837's CLM01, back in TRN02), with its status codes and text.

Both are read through `reading.read_transactions`, so a malformed acknowledgement is refused
like a malformed 835, naming the segment. The billing models will move claims from these
results: a 999 by the control number of the 837 transaction set the claims went in, a 277CA
claim by claim.
"""

from dataclasses import dataclass, field

from billing.x12.reading import Finding, Segment, X12Refused, read_transactions

VERSION_999 = "005010X231A1"
VERSION_277CA = "005010X214"

# IK501 / AK901: the acknowledgement code of a transaction set or a functional group.
ACK_CODES = {
    "A": "accepted",
    "E": "accepted with errors noted",
    "P": "partially accepted: some transaction sets were rejected",
    "M": "rejected: message authentication failed",
    "R": "rejected",
    "W": "rejected: assurance failed validity tests",
    "X": "rejected: the content could not be analysed after decryption",
}
ACCEPTED_CODES = {"A", "E"}

# IK304: what is wrong with a segment.
SEGMENT_ERRORS = {
    "1": "unrecognised segment",
    "2": "unexpected segment",
    "3": "required segment missing",
    "4": "loop occurs more often than allowed",
    "5": "segment occurs more often than allowed",
    "6": "segment not in the transaction set",
    "7": "segment out of order",
    "8": "segment has data element errors",
    "I4": "segment the implementation guide does not use",
    "I6": "segment the implementation guide requires here is missing",
    "I7": "loop occurs fewer times than the implementation guide requires",
    "I8": "segment occurs fewer times than the implementation guide requires",
    "I9": "segment present where the implementation guide says not to use it",
}

# IK403: what is wrong with an element.
ELEMENT_ERRORS = {
    "1": "required element missing",
    "2": "conditionally required element missing",
    "3": "too many elements",
    "4": "element too short",
    "5": "element too long",
    "6": "invalid character",
    "7": "invalid code value",
    "8": "invalid date",
    "9": "invalid time",
    "10": "element present that another excludes",
    "12": "too many repetitions",
    "13": "too many components",
    "I6": "code value not used by the implementation guide",
    "I9": "element the implementation guide requires here is missing",
    "I10": "element the implementation guide does not use",
    "I11": "too few repetitions",
    "I12": "value does not match the implementation guide's pattern",
    "I13": "element present where the implementation guide says not to use it",
}

# STC01-1 / STC10-1 / STC11-1: the claim status category codes a 277CA uses.
CATEGORIES = {
    "A0": ("accepted", "forwarded to another entity"),
    "A1": ("accepted", "received"),
    "A2": ("accepted", "accepted into adjudication"),
    "A3": ("rejected", "returned as unprocessable"),
    "A4": ("rejected", "not found"),
    "A5": ("accepted", "split claim"),
    "A6": ("rejected", "rejected for missing information"),
    "A7": ("rejected", "rejected for invalid information"),
    "A8": ("rejected", "rejected for a relational field in error"),
    "E0": ("pending", "no response possible: error in the submitted request"),
    "E1": ("pending", "no response possible: system status"),
    "E2": ("pending", "information holder is not responding; resubmit later"),
    "E3": ("pending", "correction required: relational fields in error"),
    "E4": ("pending", "trading partner agreement specific requirement not met"),
}


@dataclass(frozen=True)
class ElementError:
    position: str  # IK401, e.g. "2" or "5:1" (element 5, component 1)
    reference: str  # IK402: the data element's reference number
    code: str  # IK403
    bad_value: str = ""  # IK404

    @property
    def name(self) -> str:
        """The element's place as X12 writes it after the segment id: "02", "05-01"."""
        return "-".join(
            f"{int(part):02d}" if part.isdigit() else part for part in self.position.split(":")
        )

    @property
    def text(self) -> str:
        return ELEMENT_ERRORS.get(self.code, f"element error {self.code}")


@dataclass(frozen=True)
class SegmentError:
    segment: str  # IK301
    position: int  # IK302: in the 837 transaction set
    loop: str  # IK303
    code: str  # IK304
    elements: tuple[ElementError, ...] = ()

    def __str__(self) -> str:
        text = SEGMENT_ERRORS.get(self.code, f"segment error {self.code}")
        where = f"{self.segment} at segment {self.position}" + (
            f" (loop {self.loop})" if self.loop else ""
        )
        parts = [f"{where}: {text}"]
        parts += [
            f"{self.segment}{element.name}: {element.text}"
            + (f" ('{element.bad_value}')" if element.bad_value else "")
            for element in self.elements
        ]
        return "; ".join(parts)


@dataclass(frozen=True)
class TransactionAcknowledgement:
    """IK5 for one 837 transaction set (AK2): accepted or rejected, and why."""

    transaction: str  # AK201, e.g. 837
    control_number: str  # AK202: the ST02 of our 837
    code: str  # IK501
    syntax_errors: tuple[str, ...] = ()  # IK502-IK506
    errors: tuple[SegmentError, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.code in ACCEPTED_CODES

    @property
    def reasons(self) -> list[str]:
        return [str(error) for error in self.errors]


@dataclass(frozen=True)
class Acknowledgement999:
    """A 999 for one of our functional groups (AK1), with its transaction sets."""

    functional_id: str  # AK101, HC for 837P
    group_control_number: str  # AK102: the GS06 of our 837 file
    version: str  # AK103
    code: str  # AK901
    included: int  # AK902
    received: int  # AK903
    accepted_count: int  # AK904
    transactions: tuple[TransactionAcknowledgement, ...] = ()

    @property
    def status(self) -> str:
        return ACK_CODES.get(self.code, self.code)


@dataclass(frozen=True)
class ClaimStatus:
    """One STC status composite: category, status code, entity, and their plain meaning."""

    category: str  # STC01-1, e.g. A7
    code: str  # STC01-2 (claim status code)
    entity: str  # STC01-3 (who the status is about, e.g. 85 billing provider)
    action: str = ""  # STC03: WQ accepted, U rejected
    message: str = ""  # STC12

    @property
    def outcome(self) -> str:
        return CATEGORIES[self.category][0]

    @property
    def text(self) -> str:
        text = f"{self.category} {CATEGORIES[self.category][1]} (status {self.code}"
        text += f", entity {self.entity})" if self.entity else ")"
        return f"{text}: {self.message}" if self.message else text


@dataclass(frozen=True)
class ClaimAcknowledgement:
    """A 277CA 2200D: one of our claims, accepted or rejected."""

    position: int = field(compare=False)  # of its TRN
    claim_id: str = ""  # TRN02: the 837's CLM01
    payer_claim_number: str = ""  # REF*1K
    patient_name: str = ""
    member_id: str = ""
    amount: str = ""  # STC04 of the first status: the claim's charge as the payer read it
    statuses: tuple[ClaimStatus, ...] = ()

    @property
    def rejected(self) -> bool:
        return any(status.outcome == "rejected" for status in self.statuses)

    @property
    def accepted(self) -> bool:
        return not self.rejected and any(s.outcome == "accepted" for s in self.statuses)

    @property
    def reasons(self) -> list[str]:
        return [status.text for status in self.statuses]


@dataclass(frozen=True)
class Acknowledgement277:
    """A 277CA: the batch the payer received (2200B TRN02, our 837's BHT03) and its claims."""

    reference: str  # BHT03
    payer: str
    batch: str  # 2200B TRN02
    claims: tuple[ClaimAcknowledgement, ...] = ()

    @property
    def accepted(self) -> list[ClaimAcknowledgement]:
        return [claim for claim in self.claims if claim.accepted]

    @property
    def rejected(self) -> list[ClaimAcknowledgement]:
        return [claim for claim in self.claims if claim.rejected]


def parse_999(text: str) -> list[Acknowledgement999]:
    """Each functional group a 999 acknowledges; `X12Refused` naming the segment otherwise."""
    transactions = read_transactions(
        text, functional_id="FA", version=VERSION_999, transaction="999"
    )
    findings: list[Finding] = []
    acknowledgements = [_acknowledgement_999(segments, findings) for segments in transactions]
    if findings:
        raise X12Refused(findings)
    return acknowledgements


def _acknowledgement_999(segments: list[Segment], findings: list[Finding]) -> Acknowledgement999:
    ak1 = ak9 = None
    transactions: list[TransactionAcknowledgement] = []
    current: dict = {}
    errors: list[SegmentError] = []
    for seg in segments:
        if seg.id == "AK1":
            ak1 = seg
        elif seg.id == "AK2":
            current, errors = {"transaction": seg.get(1), "control_number": seg.get(2)}, []
        elif seg.id == "IK3":
            errors.append(SegmentError(seg.get(1), _int(seg, 2, findings), seg.get(3), seg.get(4)))
        elif seg.id == "IK4" and errors:
            element = ElementError(":".join(seg.components(1)), seg.get(2), seg.get(3), seg.get(4))
            last = errors[-1]
            errors[-1] = SegmentError(
                last.segment, last.position, last.loop, last.code, (*last.elements, element)
            )
        elif seg.id == "IK5":
            transactions.append(
                TransactionAcknowledgement(
                    code=seg.get(1),
                    syntax_errors=tuple(seg.get(n) for n in range(2, 7) if seg.get(n)),
                    errors=tuple(errors),
                    **current,
                )
            )
        elif seg.id == "AK9":
            ak9 = seg
    assert ak1 is not None and ak9 is not None  # pyx12 refuses a 999 without them
    return Acknowledgement999(
        functional_id=ak1.get(1),
        group_control_number=ak1.get(2),
        version=ak1.get(3),
        code=ak9.get(1),
        included=_int(ak9, 2, findings),
        received=_int(ak9, 3, findings),
        accepted_count=_int(ak9, 4, findings),
        transactions=tuple(transactions),
    )


def parse_277ca(text: str) -> list[Acknowledgement277]:
    """Each 277CA transaction set with its claims; `X12Refused` naming the segment when the
    file is malformed or a status category is one we do not know."""
    transactions = read_transactions(
        text, functional_id="HN", version=VERSION_277CA, transaction="277"
    )
    findings: list[Finding] = []
    acknowledgements = [_acknowledgement_277(segments, findings) for segments in transactions]
    if findings:
        raise X12Refused(findings)
    return acknowledgements


def _acknowledgement_277(segments: list[Segment], findings: list[Finding]) -> Acknowledgement277:
    reference = payer = batch = ""
    claims: list[dict] = []
    for seg in segments:
        loop = seg.loop
        if seg.id == "BHT":
            reference = seg.get(3)
        elif seg.id == "NM1" and loop == "2100A":
            payer = seg.get(3)
        elif seg.id == "TRN" and loop == "2200B":
            batch = seg.get(2)
        elif seg.id == "NM1" and loop == "2100D":
            name = " ".join(part for part in (seg.get(4), seg.get(3)) if part)
            claims.append({"patient_name": name, "member_id": seg.get(9), "statuses": []})
        elif seg.id == "TRN" and loop == "2200D":
            claims[-1].update(position=seg.position, claim_id=seg.get(2))
        elif seg.id == "STC" and loop == "2200D":
            claims[-1]["statuses"].extend(_statuses(seg, findings))
            claims[-1].setdefault("amount", seg.get(4))
        elif seg.id == "REF" and loop == "2200D" and seg.get(1) == "1K":
            claims[-1]["payer_claim_number"] = seg.get(2)
    return Acknowledgement277(
        reference=reference,
        payer=payer,
        batch=batch,
        claims=tuple(
            ClaimAcknowledgement(**{**claim, "statuses": tuple(claim["statuses"])})
            for claim in claims
        ),
    )


def _statuses(stc: Segment, findings: list[Finding]) -> list[ClaimStatus]:
    """STC01, STC10 and STC11: up to three statuses in one segment, sharing its message."""
    statuses = []
    for number in (1, 10, 11):
        if not stc.get(number):
            continue
        parts = [*stc.components(number), "", ""]
        if parts[0] not in CATEGORIES:
            findings.append(stc.finding(f"'{parts[0]}' is not a claim status category code"))
            continue
        statuses.append(ClaimStatus(parts[0], parts[1], parts[2], stc.get(3), stc.get(12)))
    return statuses


def _int(seg: Segment, number: int, findings: list[Finding]) -> int:
    text = seg.get(number)
    if text.isdigit():
        return int(text)
    if text:
        findings.append(seg.finding(f"{seg.id}{number:02d} '{text}' is no whole number"))
    return 0

"""Reading an inbound X12 file: pyx12 checks it against its implementation guide's map, and
hands us every segment with its place (the map's loop path and its position in the transaction
set), so the parsers of 835, 999 and 277CA read loops, not guesses.

A file of more than `X12_PYX12_MAX_SEGMENTS` segments (settings; 2,000 by default, ~250 claim
payments) whose reader passes its own structural check (`structure`, the 835's in structure.py)
is not walked through pyx12's map: pyx12's `X12Reader` tokenises it and checks its envelope,
and the structural check places every segment in its loop and checks what the parser reads
(about 1 ms of CPU per segment less: see structure.py).

A file that pyx12 (or the structural check) finds wrong, or that is not the transaction we
expect, is refused whole: `X12Refused` carries findings that each name a segment and its
position ("CLP at segment 12"), the position counted as X12 counts it (ST is 1), so a biller
can find it in the file.
"""

import io
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import pyx12.errors
import pyx12.params
import pyx12.x12file
import pyx12.x12n_document
from django.conf import settings

from clinic.errors import ApplicationError

# Separators we format pyx12's segments with: no X12 value can hold these control characters,
# whatever delimiters the sender chose.
_ELEMENT = "\x1d"
_COMPONENT = "\x1f"
# The ISA segment is fixed-length: 106 characters, its last the segment terminator.
ISA_LENGTH = 106

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finding:
    """One reason a file is refused, naming the segment that has it."""

    segment: str
    # In its transaction set (ST = 1); 0 for the envelope (ISA, GS, GE, IEA) and for errors of
    # the transaction set as a whole (named by its trailer, SE).
    position: int
    message: str

    @property
    def where(self) -> str:
        if self.position:
            return f"{self.segment} at segment {self.position}"
        return f"{self.segment} segment"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "position": self.position,
            "where": self.where,
            "message": self.message,
        }


class X12Refused(ApplicationError):
    """The file is refused whole; `findings` say where and why (in the problem's `findings`)."""

    status = 400
    code = "x12-refused"

    def __init__(self, findings: list[Finding]):
        self.findings = tuple(findings)
        shown = "; ".join(str(finding) for finding in self.findings[:5])
        more = f" (and {len(self.findings) - 5} more)" if len(self.findings) > 5 else ""
        super().__init__(
            f"The file was refused: {shown}{more}.",
            extra={"findings": [finding.as_dict() for finding in self.findings]},
        )


@dataclass(frozen=True)
class Segment:
    """A segment as pyx12 placed it in the implementation guide's map."""

    id: str
    position: int  # in its transaction set (ST = 1); 0 for the envelope
    path: str  # the map's path, e.g. /ISA_LOOP/GS_LOOP/ST_LOOP/DETAIL/2000/2100/CLP
    elements: tuple[str, ...]  # elements[0] is <id>01

    @property
    def loop(self) -> str:
        """The innermost loop id of the map path ("2110", "HEADER", "ST_LOOP")."""
        return self.path.rsplit("/", 2)[-2]

    def get(self, number: int) -> str:
        """Element <id><number> ("" when absent)."""
        return self.elements[number - 1] if 0 < number <= len(self.elements) else ""

    def components(self, number: int) -> list[str]:
        return self.get(number).split(_COMPONENT)

    def finding(self, message: str) -> Finding:
        return Finding(self.id, self.position, message)

    def amount(self, number: int, findings: list[Finding], *, name: str) -> Decimal:
        """Element <id><number> as a Decimal; a finding (and 0) when it is not a number."""
        text = self.get(number)
        try:
            value = Decimal(text) if text else Decimal(0)
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite():
            findings.append(self.finding(f"{name} ({self.id}{number:02d}) '{text}' is no amount"))
            return Decimal(0)
        return value

    def date(self, number: int, findings: list[Finding]) -> date | None:
        """Element <id><number>, a CCYYMMDD date; None when absent, a finding when no date."""
        text = self.get(number)
        if not text:
            return None
        try:
            if len(text) != 8 or not text.isdigit():
                raise ValueError(text)
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            findings.append(self.finding(f"{self.id}{number:02d} '{text}' is no date (CCYYMMDD)"))
            return None


def read_transactions(
    text: str,
    *,
    functional_id: str,
    version: str,
    transaction: str,
    structure: Callable[[list[Segment]], Iterable[Finding]] | None = None,
) -> list[list[Segment]]:
    """The transaction sets (ST to SE) of `text`, each a list of segments, once pyx12 found the
    file valid and it holds only `transaction` sets of `version` (GS08) in groups of
    `functional_id` (GS01). Raises `X12Refused` otherwise. With `structure`, a file of more
    than `X12_PYX12_MAX_SEGMENTS` segments is checked by it instead of pyx12's map (see the
    module's docstring).

    pyx12 is asked for no 997/999 of its own: it crashes making one when ST03 is missing, which
    835s may omit (see billing/tests/fixtures/x12/README-835.md).
    """
    findings: list[Finding] = []
    text = text.lstrip("\r\n\t ")
    if not text.startswith("ISA") or len(text) < ISA_LENGTH:
        raise X12Refused([Finding("ISA", 0, "the file does not begin with an ISA segment")])
    limit = settings.X12_PYX12_MAX_SEGMENTS
    if structure is not None and limit is not None and text.count(text[ISA_LENGTH - 1]) > limit:
        segments, findings = _tokenised(text)
        findings.extend(structure(segments))
        findings.extend(_envelope_findings(segments, functional_id, version, transaction))
        if findings:
            raise X12Refused(sorted(findings, key=_in_file_order(segments)))
        return list(_transaction_sets(segments))
    segments = []
    position = 0

    def collect(seg: Any, src: Any, node: Any, valid: bool) -> None:
        nonlocal position
        seg_id = seg.get_seg_id()
        if seg_id == "ST":
            position = 1
        elif position:
            position += 1
        formatted = seg.format("", _ELEMENT, _COMPONENT)
        elements = tuple(formatted.split(_ELEMENT)[1:])
        path = node.get_path() if node is not None else ""
        segments.append(Segment(seg_id, position, path, elements))
        if seg_id == "SE":
            position = 0

    errors = io.StringIO()
    try:
        pyx12.x12n_document.x12n_document(
            pyx12.params.params(), io.StringIO(text), None, None, fd_json=errors, callback=collect
        )
    except (pyx12.errors.X12Error, pyx12.errors.EngineError) as error:
        last = segments[-1] if segments else Segment("ISA", 0, "", ())
        raise X12Refused([last.finding(f"the file cannot be read past here: {error}")]) from error
    report = json.loads(errors.getvalue() or '{"interchanges": []}')
    findings.extend(_pyx12_findings(report, segments))
    findings.extend(_envelope_findings(segments, functional_id, version, transaction))
    if findings:
        raise X12Refused(findings)
    return list(_transaction_sets(segments))


# pyx12's envelope error codes (TA1, IK5, AK9) that concern the trailer rather than the header.
_TRAILER_CODES = {
    "isa": ("ISA", "IEA", {"001", "021", "023", "024"}),
    "gs": ("GS", "GE", {"3", "4", "5"}),
    "st": ("ST", "SE", {"2", "3", "4"}),
}


def _tokenised(text: str) -> tuple[list[Segment], list[Finding]]:
    """Every segment of `text` as pyx12's `X12Reader` splits it (the ISA's delimiters), with
    the reader's own findings: envelope counts and control numbers, missing trailers, empty or
    malformed segment ids. Positions as `read_transactions` counts them (ST = 1)."""
    segments: list[Segment] = []
    findings: list[Finding] = []
    position = 0

    def errors(reader: pyx12.x12file.X12Reader, current: Segment | None) -> None:
        for kind, code, message, _value, _line in reader.pop_errors():
            if kind == "seg" and current is not None:
                findings.append(current.finding(message))
                continue
            header, trailer, codes = _TRAILER_CODES.get(kind, ("ISA", "IEA", set()))
            name = trailer if code in codes else header
            at = current.position if current is not None and current.id == name else 0
            findings.append(Finding(name, at, f"{message} (code {code})"))

    try:
        reader = pyx12.x12file.X12Reader(io.StringIO(text))
        for seg in reader:
            seg_id = seg.get_seg_id()
            if seg_id == "ST":
                position = 1
            elif position:
                position += 1
            formatted = seg.format("", _ELEMENT, _COMPONENT)
            current = Segment(seg_id, position, "", tuple(formatted.split(_ELEMENT)[1:]))
            segments.append(current)
            errors(reader, current)
            if seg_id == "SE":
                position = 0
        reader.cleanup()
        errors(reader, None)
    except pyx12.errors.X12Error as error:
        last = segments[-1] if segments else Segment("ISA", 0, "", ())
        raise X12Refused([last.finding(f"the file cannot be read past here: {error}")]) from error
    if not any(seg.id == "IEA" for seg in segments):
        findings.append(Finding("IEA", 0, "the file is not a complete X12 interchange"))
    return segments, findings


def _in_file_order(segments: list[Segment]) -> Callable[[Finding], int]:
    """A sort key putting findings in the file's order (envelope findings last)."""
    order: dict[tuple[str, int], int] = {}
    for index, seg in enumerate(segments):
        order.setdefault((seg.id, seg.position), index)
    return lambda finding: order.get((finding.segment, finding.position), len(segments))


def _pyx12_findings(report: dict[str, Any], segments: list[Segment]) -> Iterator[Finding]:
    """pyx12's errors as findings, in the order of the file."""
    if not report["interchanges"] and segments:
        yield Finding("ISA", 0, "the file is not a complete X12 interchange")
    for interchange in report["interchanges"]:
        for error in interchange["errors"]:
            yield Finding("ISA", 0, f"{error['err_str']} (code {error['err_cde']})")
        for group in interchange["groups"]:
            for error in group["errors"]:
                yield Finding("GS", 0, f"{error['err_str']} (code {error['err_cde']})")
            for transaction in group["transactions"]:
                for error in transaction["errors"]:
                    yield Finding("SE", 0, f"{error['err_str']} (code {error['err_cde']})")
                for seg in transaction["segments"]:
                    problems = [error["err_str"] for error in seg["errors"]]
                    for element in seg["elements"]:
                        for error in element["errors"]:
                            name = f"{seg['seg_id']}{int(element['ele_pos']):02d}"
                            problems.append(f"{name}: {error['err_str']}")
                    for problem in problems:
                        yield Finding(seg["seg_id"], int(seg["seg_count"] or 0), problem)


def _envelope_findings(
    segments: list[Segment], functional_id: str, version: str, transaction: str
) -> Iterator[Finding]:
    """The file is the kind we read: GS01 and GS08 and every ST01 as expected."""
    if not any(seg.id == "ST" for seg in segments):
        yield Finding("ST", 0, "the file holds no transaction set")
    for seg in segments:
        if seg.id == "GS" and (seg.get(1), seg.get(8)) != (functional_id, version):
            yield seg.finding(
                f"expected a {functional_id} group of version {version}, "
                f"not {seg.get(1)} {seg.get(8)}"
            )
        elif seg.id == "ST" and seg.get(1) != transaction:
            yield seg.finding(f"expected a {transaction} transaction set, not '{seg.get(1)}'")


def _transaction_sets(segments: list[Segment]) -> Iterator[list[Segment]]:
    current: list[Segment] | None = None
    for seg in segments:
        if seg.id == "ST":
            current = [seg]
        elif current is not None:
            current.append(seg)
            if seg.id == "SE":
                yield current
                current = None

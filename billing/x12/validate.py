"""X12 5010 validation by pyx12: structure, segment order and counts, element formats, dates
and code lists of the implementation guide the file names (837P, 835, 999, 277CA alike).

pyx12 keeps its findings in an error tree it builds inside `x12n_document`; the way out it
offers is its JSON error document, which we read back into flat `X12Error`s naming the segment,
its ordinal in the file and, for an element's error, the element ("CLM05-01"), so an upload can
be refused with a 400 that points at the segment. Envelope errors (counts and control numbers
of SE, GE, IEA) are reported on the trailer they concern.

pyx12 also writes a 999 when asked. Only ask for it for files that have an ST03 (837s): for an
835 without one, pyx12 4.0 fails while making the acknowledgement.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any, NamedTuple

import pyx12.errors
import pyx12.params
import pyx12.rawx12file
import pyx12.x12file
import pyx12.x12n_document

# Envelope error codes (TA1, AK9/IK5) that concern the trailer rather than the header.
_TRAILER_CODES = {
    "ISA": {"001", "021", "023", "024"},
    "GS": {"3", "4", "5"},
    "ST": {"2", "3", "4"},
}
_TRAILERS = {"ISA": "IEA", "GS": "GE", "ST": "SE"}


class X12Error(NamedTuple):
    """One finding: the segment id, its ordinal in the file (ISA = 1), pyx12's error code
    (the 999's IK3/IK4/IK5 codes, or TA1's), its message, and the element when it is one
    element's fault."""

    segment: str
    position: int
    code: str
    message: str
    element: str = ""


@dataclass(frozen=True)
class Validation:
    errors: tuple[X12Error, ...]
    acknowledgement: str = ""  # pyx12's 999, when asked for

    @property
    def ok(self) -> bool:
        return not self.errors


def _envelope(level: str, node: dict[str, Any]) -> list[X12Error]:
    return [
        X12Error(
            segment=_TRAILERS[level] if e["err_cde"] in _TRAILER_CODES[level] else level,
            position=node["cur_line"],
            code=e["err_cde"],
            message=e["err_str"],
        )
        for e in node["errors"]
    ]


def _segment(node: dict[str, Any]) -> list[X12Error]:
    found = [
        X12Error(node["seg_id"], node["cur_line"], e["err_cde"], e["err_str"])
        for e in node["errors"]
    ]
    for element in node["elements"]:
        name = f"{node['seg_id']}{element['ele_pos']:02d}"
        if element["subele_pos"]:
            name += f"-{element['subele_pos']:02d}"
        found += [
            X12Error(node["seg_id"], node["cur_line"], e["err_cde"], e["err_str"], name)
            for e in element["errors"]
        ]
    return found


def _errors(document: dict[str, Any]) -> list[X12Error]:
    found: list[X12Error] = []
    for isa in document["interchanges"]:
        found += _envelope("ISA", isa)
        for gs in isa["groups"]:
            found += _envelope("GS", gs)
            for st in gs["transactions"]:
                found += _envelope("ST", st)
                for seg in st["segments"]:
                    found += _segment(seg)
    return sorted(found, key=lambda e: e.position)


def _segment_id(text: str, position: int) -> str:
    raw = pyx12.rawx12file.RawX12File(io.StringIO(text))
    for ordinal, line in enumerate(raw, start=1):
        if ordinal == position:
            return line.strip().split(raw.ele_term, 1)[0]
    return "IEA"


def validate(text: str, *, acknowledgement: bool = False) -> Validation:
    """Validate an X12 text against its implementation guide; no errors means pyx12 says OK.

    A text pyx12 cannot even open (no 106-character ISA, an unknown version or guide) is one
    error on ISA or GS rather than an exception."""
    try:
        pyx12.x12file.X12Reader(io.StringIO(text)).close()
    except pyx12.errors.X12Error as error:
        return Validation((X12Error("ISA", 1, "X12", str(error)),))
    report, ack = io.StringIO(), io.StringIO() if acknowledgement else None
    read = [0]  # the ordinal of the last segment pyx12 got through

    def _progress(seg: Any, src: Any, node: Any, valid: bool) -> None:
        read[0] = src.get_cur_line()

    try:
        valid = pyx12.x12n_document.x12n_document(
            param=pyx12.params.params(),
            src_file=io.StringIO(text),
            fd_997=ack,
            fd_html=None,
            fd_json=report,
            callback=_progress,
        )
    except pyx12.errors.X12Error as error:  # e.g. an ISA without its 16 elements
        return Validation((X12Error("ISA", 1, "X12", str(error)),))
    except pyx12.errors.EngineError as error:  # e.g. a GS naming a guide pyx12 has no map for
        return Validation((X12Error("GS", 2, "X12", str(error)),))
    except Exception as error:  # pyx12 4.0 itself fails on some broken envelopes
        # (a trailer out of place, an empty count): the segment after the last one it read.
        position = read[0] + 1
        return Validation(
            (X12Error(_segment_id(text, position), position, "X12", f"unreadable: {error}"),)
        )
    errors = _errors(json.loads(report.getvalue())) if report.getvalue() else []
    if not valid and not errors:
        errors = [X12Error("ISA", 1, "X12", "pyx12 refused the file without saying where")]
    return Validation(tuple(errors), ack.getvalue() if ack else "")

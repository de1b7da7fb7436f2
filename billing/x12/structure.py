"""Our own structural check of an 835, for files too large for pyx12's full validation.

pyx12 walks every segment through the implementation guide's map and checks every element
against its type, length and code list: about 1 ms of CPU per segment, 2.5-8 s for an 835 of
1,000 claim payments (8,000 segments). Above `X12_PYX12_MAX_SEGMENTS` segments (settings) the
reader (reading.py) instead tokenises the file with pyx12's own `X12Reader` (delimiters from
the ISA, and its envelope checks: ISA/IEA, GS/GE and ST/SE control numbers and counts, missing
trailers) and checks here what the parser relies on:

- every segment is one the 835 guide (005010X221A1) allows where it stands: its loops in the
  guide's order (header, 1000A payer, 1000B payee, 2000 LX, 2100 CLP, 2110 SVC, PLB footer),
  the segments of each loop in the guide's order, the required ones present (BPR and TRN
  first, both N1 loops, NM1*QC in each claim payment);
- every element the posting reads is present when the guide requires it, and holds one of the
  guide's codes where it has a code list we act on (BPR01/03/04, TRN01, CLP02, CAS01, SVC01-1,
  LQ01); amounts and dates are checked as they are read (reading.Segment.amount and .date);
- no element holds a control character.

Each finding names its segment and position like pyx12's do, so the 400 reads the same. What
this does not check is what the posting never reads (e.g. N4's state codes, PER's numbers).
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass

from billing.x12.reading import Finding, Segment

_ROOT = "/ISA_LOOP/GS_LOOP/ST_LOOP"


@dataclass(frozen=True)
class _Loop:
    id: str
    path: str
    opener: str  # the segment that starts it
    qualifier: str  # its <opener>01, when that tells loops apart (N1*PR, N1*PE)
    segments: tuple[str, ...]  # in the guide's order (repeats allowed, order never backwards)
    # Loops whose segment may precede this one's opener (the loop it follows or nests in).
    after: frozenset[str]
    required: tuple[str, ...] = ()


_HEADER = _Loop("HEADER", f"{_ROOT}/HEADER", "BPR", "", ("BPR", "TRN", "CUR", "REF", "DTM"),
                frozenset({"ST_LOOP"}), ("BPR", "TRN"))  # fmt: skip
_LOOPS_835 = (
    _HEADER,
    _Loop("1000A", f"{_ROOT}/HEADER/1000A", "N1", "PR", ("N1", "N3", "N4", "REF", "PER"),
          frozenset({"HEADER"})),
    _Loop("1000B", f"{_ROOT}/HEADER/1000B", "N1", "PE", ("N1", "N3", "N4", "REF", "RDM"),
          frozenset({"1000A"})),
    _Loop("2000", f"{_ROOT}/DETAIL/2000", "LX", "", ("LX", "TS3", "TS2"),
          frozenset({"1000B", "2000", "2100", "2110"})),
    _Loop("2100", f"{_ROOT}/DETAIL/2000/2100", "CLP", "",
          ("CLP", "CAS", "NM1", "MIA", "MOA", "REF", "DTM", "PER", "AMT", "QTY"),
          frozenset({"2000", "2100", "2110"}), ("NM1*QC",)),
    _Loop("2110", f"{_ROOT}/DETAIL/2000/2100/2110", "SVC", "",
          ("SVC", "DTM", "CAS", "REF", "AMT", "QTY", "LQ"), frozenset({"2100", "2110"})),
    _Loop("FOOTER", f"{_ROOT}/FOOTER", "PLB", "", ("PLB",),
          frozenset({"1000B", "2000", "2100", "2110", "FOOTER"})),
)  # fmt: skip
_OPENERS = {(loop.opener, loop.qualifier): loop for loop in _LOOPS_835 if loop is not _HEADER}
_ENDS_835 = frozenset({"1000B", "2000", "2100", "2110", "FOOTER"})  # loops SE may follow

# Elements the guide requires, of the segments the posting reads (by element number).
_REQUIRED = {
    "BPR": (1, 2, 3, 4, 16),
    "TRN": (1, 2, 3),
    "N1": (1, 2),
    "LX": (1,),
    "CLP": (1, 2, 3, 4, 6),
    "CAS": (1, 2, 3),
    "NM1": (1, 2),
    "SVC": (1, 2, 3),
    "DTM": (1, 2),
    "REF": (1, 2),
    "AMT": (1, 2),
    "LQ": (1, 2),
    "PLB": (1, 2, 3, 4),
    "MOA": (),
}
# Code lists of the elements the posting acts on (005010X221A1).
_CODES = {
    ("BPR", 1): {"C", "D", "H", "I", "P", "U", "X"},
    ("BPR", 3): {"C", "D"},
    ("BPR", 4): {"ACH", "BOP", "CHK", "FWT", "NON"},
    ("TRN", 1): {"1"},
    ("CLP", 2): {"1", "2", "3", "4", "19", "20", "21", "22", "23", "25"},
    ("CAS", 1): {"CO", "CR", "OA", "PI", "PR"},
    ("LQ", 1): {"HE", "RX"},
    ("N1", 1): {"PR", "PE"},
    ("NM1", 1): {"QC", "IL", "74", "82", "TT", "PR", "GB"},
}
_SVC_QUALIFIERS = {"AD", "ER", "HC", "HP", "IV", "N4", "N6", "NU", "WK"}
_CONTROL = re.compile(r"[\x00-\x1c\x1e\x7f]")  # \x1d, \x1f: our own separators (reading.py)


def check_835(segments: list[Segment]) -> Iterator[Finding]:
    """Findings on the transaction sets of `segments` (envelope included, ST = 1), each named
    by its segment; the segments of a transaction set get the map path of their loop (the
    parser reads loops, as it does pyx12's) — `segments` is changed in place."""
    loop: _Loop | None = None
    state = "ST_LOOP"
    inside = False  # between ST and SE
    order = 0
    seen: set[str] = set()
    for index, seg in enumerate(segments):
        if seg.id in ("ISA", "GS", "GE", "IEA"):
            if inside:
                yield seg.finding("the transaction set before it has no SE")
                inside = False
            continue
        yield from _elements(seg)
        if seg.id == "ST":
            loop, state, inside, order, seen = None, "ST_LOOP", True, 0, set()
            segments[index] = _placed(seg, f"{_ROOT}/ST")
            continue
        if not inside:
            yield seg.finding("not inside a transaction set (ST ... SE)")
            continue
        if seg.id == "SE":
            if state not in _ENDS_835:
                yield seg.finding(f"the transaction set ends early (in loop {state})")
            yield from _missing(loop, seen, seg)
            segments[index] = _placed(seg, f"{_ROOT}/SE")
            loop, inside = None, False
            continue
        entered = _enter(loop, state, seg)
        if entered is not None:
            yield from _missing(loop, seen, seg)
            loop, state, order, seen = entered, entered.id, 0, set()
        if loop is None or seg.id not in loop.segments[order:]:
            where = f"loop {loop.id}" if loop is not None else "the transaction set"
            allowed = loop.segments[order:] if loop is not None else ("BPR",)
            yield seg.finding(
                f"{seg.id} is not expected here in {where} (the 835 guide allows "
                f"{', '.join(allowed)} or a next loop)"
            )
            continue
        order = loop.segments.index(seg.id, order)
        seen.update((seg.id, f"{seg.id}*{seg.get(1)}"))
        segments[index] = _placed(seg, f"{loop.path}/{seg.id}")


def _enter(loop: _Loop | None, state: str, seg: Segment) -> _Loop | None:
    """The loop `seg` opens from where we are, or None when it stays in the current one."""
    if loop is None and seg.id == "BPR":
        return _HEADER
    target = _OPENERS.get((seg.id, seg.get(1))) or _OPENERS.get((seg.id, ""))
    if target is None or state not in target.after:
        return None
    return target


def _missing(loop: _Loop | None, seen: set[str], at: Segment) -> Iterator[Finding]:
    if loop is None:
        return
    for required in loop.required:
        if required not in seen:
            yield at.finding(f"loop {loop.id} before it lacks its required {required} segment")


def _elements(seg: Segment) -> Iterator[Finding]:
    for number in _REQUIRED.get(seg.id, ()):
        if not seg.get(number):
            yield seg.finding(f"{seg.id}{number:02d} is required")
    for number, element in enumerate(seg.elements, start=1):
        if _CONTROL.search(element):
            yield seg.finding(f"{seg.id}{number:02d} holds a control character")
        codes = _CODES.get((seg.id, number))
        if codes is not None and element and element not in codes:
            yield seg.finding(f"{seg.id}{number:02d} '{element}' is not one of the guide's codes")
    if seg.id == "SVC":
        procedure = seg.components(1)
        if procedure[0] not in _SVC_QUALIFIERS:
            yield seg.finding(f"SVC01-01 '{procedure[0]}' is not one of the guide's qualifiers")
        if len(procedure) < 2 or not procedure[1]:
            yield seg.finding("SVC01-02 (the procedure code) is required")


def _placed(seg: Segment, path: str) -> Segment:
    return Segment(seg.id, seg.position, path, seg.elements)

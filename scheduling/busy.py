"""Time taken by something other than a visit, declared by apps above scheduling (the
waitlist's holds of freed slots): availability (and so the slot pickers, smart booking and a
409's alternatives) leaves it out as it leaves out a visit. An app registers a source in its
`AppConfig.ready()`; scheduling imports none of them. The database, not this list, keeps such
time from being booked (the waitlist's trigger): this only keeps it from being offered."""

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

# (practitioner ids, from, until) -> (practitioner id, lower, upper) of each busy range,
# buffers included, overlapping [from, until)
BusySource = Callable[[Sequence[int], datetime, datetime], Iterable[tuple[int, datetime, datetime]]]

_sources: list[BusySource] = []


def busy_source_register(source: BusySource) -> None:
    if source not in _sources:
        _sources.append(source)


def busy_elsewhere(
    practitioner_ids: Sequence[int], lo: datetime, hi: datetime
) -> list[tuple[int, datetime, datetime]]:
    return [row for source in _sources for row in source(practitioner_ids, lo, hi)]

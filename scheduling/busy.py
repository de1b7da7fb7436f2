"""Time taken by something other than a visit, declared by apps above scheduling (the
waitlist's holds of freed slots): availability (and so the slot pickers, smart booking and a
409's alternatives) leaves it out as it leaves out a visit. An app registers a source in its
`AppConfig.ready()`; scheduling imports none of them. The database, not this list, keeps such
time from being booked (the waitlist's trigger): this only keeps it from being offered.

A source is a SELECT of `(practitioner_id, lower, upper)` (timestamptz: the busy range,
buffers included) that availability runs in its one round trip (`availability._inputs_sql`,
which keeps the rows of the practitioners asked about), so it costs none of its own. It may use
these named parameters: `%(lo)s` and `%(hi)s` (the window: return what overlaps [lo, hi)) and
`%(clock)s` (the time now)."""

_sources: list[str] = []


def busy_source_register(sql: str) -> None:
    if sql not in _sources:
        _sources.append(sql)


def busy_sources() -> tuple[str, ...]:
    return tuple(_sources)

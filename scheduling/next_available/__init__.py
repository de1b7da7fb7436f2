"""The next-available projection: `refresh` (computing the rows, and the SQL that finds the
stale ones), `receivers` (schedule-rule changes queue a refresh) and `tasks` (the refresh and
the beat's)."""

"""The test run's clock: every process of a run reads the same chosen instant, never the wall's.

Before Django loads (tests/testenv.py), the run picks an instant, `CLINIC_TEST_NOW` (ISO 8601
with an offset) or `DEFAULT`, and travels there with time-machine, ticking from there. Every
Python process the run starts (Celery workers, the live HTTP and websocket servers, commands)
travels too, through `tests/clockhook/sitecustomize.py` on their `PYTHONPATH`. All of them are
anchored to the same real moment, `CLINIC_TEST_CLOCK` = "<instant>@<real epoch seconds>", so
they agree to the millisecond however late they start. A test that needs another instant still
travels there itself (`time_machine.travel`), which nests inside this one.

`make test-clock` runs the tests that read "now" at each of `INSTANTS` (scripts/test_clock.py).
"""

import os
import time
from datetime import datetime
from pathlib import Path

NOW_ENV = "CLINIC_TEST_NOW"
CLOCK_ENV = "CLINIC_TEST_CLOCK"
HOOK_DIR = Path(__file__).resolve().parent / "clockhook"

# A Wednesday, 10:00 in New York and 15:00 in Dublin: an ordinary working day in both clinics.
DEFAULT = "2026-12-09T15:00:00+00:00"

# The instants the clock check runs at: the hour a fresh clone's `make test` failed, working
# hours in New York, the year's last minute, and the four DST changes of the test clinics' zones
# (each a little before the change, so the next day's slots cross it).
INSTANTS = {
    "saturday-evening-utc": "2026-12-12T18:40:00+00:00",
    "weekday-14h-new-york": "2026-12-09T14:00:00-05:00",
    "new-years-eve-23h59-utc": "2026-12-31T23:59:00+00:00",
    "new-york-spring-forward": "2027-03-14T01:30:00-05:00",
    "new-york-fall-back": "2027-11-07T01:30:00-04:00",
    "dublin-spring-forward": "2027-03-28T00:30:00+00:00",
    "dublin-fall-back": "2027-10-31T01:30:00+01:00",
}

# The tests whose rules read "now" (notice, horizon, availability, next available, late changes,
# check-in day, alerts, beats): `make test-clock` runs these at each instant. Paths from the
# repository root; a folder takes everything under it.
CLOCK_SENSITIVE = (
    "scheduling/",
    "authorizations/",
    "backoffice/",
    "portal/",
    "practice/tests/test_search.py",
    "practice/tests/test_services.py",
    "tests/test_answer_cache.py",
    "tests/test_patient_rights.py",  # erasure cancels the visits still to come
    "notifications/tests/test_demo_notifications.py",  # the demo's visits are around today
    "waitlist/",  # holds expire, offers look ahead from now
    "tests/test_work_due.py",  # the beat's due times: leases, stuck jobs
)


def _travel(instant: datetime, anchor: float) -> None:
    import time_machine

    time_machine.travel(instant.timestamp() + (time.time() - anchor), tick=True).start()
    # time-machine starts ticking at the first read of the clock, not at start(): read it now,
    # or a process that reads it first seconds later (a server importing Django on a busy
    # machine) lags the run by those seconds, and a token the test process signs is "not yet
    # valid" (iat beyond the 5 s leeway) for the live servers.
    time.time()


def start() -> str:
    """Travel this process to the run's instant and set the environment its children inherit;
    returns the instant (ISO 8601)."""
    if CLOCK_ENV in os.environ:  # a run started by a run (the clock check): keep its anchor
        follow()
        return os.environ[CLOCK_ENV].rpartition("@")[0]
    instant = os.environ.get(NOW_ENV) or DEFAULT
    anchor = time.time()
    moment = datetime.fromisoformat(instant)
    if moment.tzinfo is None:
        raise SystemExit(f"{NOW_ENV}={instant!r} needs an offset, e.g. +00:00")
    os.environ[CLOCK_ENV] = f"{instant}@{anchor!r}"
    paths = [str(HOOK_DIR), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    _travel(moment, anchor)
    return instant


def run_instant() -> datetime:
    """The instant this run travelled to: what a test names when it needs "now" explicitly
    (travelling there without ticking, or agreeing with the live servers and workers, which
    follow the same clock), instead of reading a clock that ticks while the test runs."""
    value = os.environ.get(CLOCK_ENV)
    instant = value.rpartition("@")[0] if value else os.environ.get(NOW_ENV) or DEFAULT
    return datetime.fromisoformat(instant)


def follow() -> None:
    """In a child process: travel to the clock the parent run set, if any."""
    value = os.environ.get(CLOCK_ENV)
    if value:
        instant, _, anchor = value.rpartition("@")
        _travel(datetime.fromisoformat(instant), float(anchor))

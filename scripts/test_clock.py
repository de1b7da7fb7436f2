"""Run the tests that read "now" at each of the fixed instants in tests/clock.py.

    scripts/with-services .venv/bin/python scripts/test_clock.py [--only NAME ...] [pytest args]

Each instant is a separate pytest run with `CLINIC_TEST_NOW` set, so every process of that run
(workers and live servers included) reads that instant. Prints one line per instant and exits
non-zero when any run fails. Without pytest arguments it runs the clock-sensitive tests: those
marked `clock` (the modules whose rules read the time: notice, horizon, availability, next
available, late changes, alerts, beats).
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.clock import CLOCK_ENV, INSTANTS, NOW_ENV  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", action="append", choices=sorted(INSTANTS), help="an instant to run"
    )
    args, pytest_args = parser.parse_known_args()
    pytest_args = pytest_args or ["-m", "clock"]
    failed = []
    for name, instant in INSTANTS.items():
        if args.only and name not in args.only:
            continue
        env = {key: value for key, value in os.environ.items() if key != CLOCK_ENV}
        env[NOW_ENV] = instant
        began = time.monotonic()
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", *pytest_args],
            cwd=ROOT,
            env=env,
        )
        status = "passed" if run.returncode == 0 else f"FAILED (exit {run.returncode})"
        print(f"clock {name:26} {instant}  {status}  {time.monotonic() - began:.0f} s", flush=True)
        if run.returncode:
            failed.append(name)
    if failed:
        print(f"clock check failed at: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

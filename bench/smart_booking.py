"""Issue 6's smart-booking benchmark on its own: 500 jobs at 50 concurrent clients with one and
then two Celery worker processes, and a non-saturated run at 2 jobs/s; queued→completed
p50/p95/p99, jobs/s, client-observed POST→final and the websocket delivery delay, then the
checks (no lost or doubled job, no overlap, ledger consistent).

    scripts/with-services .venv/bin/python bench/smart_booking.py [--jobs 500] [--clients 50]
        [--quick | --smoke] [--port 18000]

It is `bench/run.py --only smart` (the same data set, servers and table; the scenario lives in
bench/scenarios/smart.py) with the job count and concurrency as options.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import run  # noqa: E402
from bench.scenarios import smart  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=smart.JOBS, help="jobs per worker setting")
    parser.add_argument("--clients", type=int, default=smart.CLIENTS, help="concurrent clients")
    args, rest = parser.parse_known_args(argv)
    smart.JOBS, smart.CLIENTS = args.jobs, args.clients
    smart.SMOKE_JOBS = min(smart.SMOKE_JOBS, args.jobs)
    return run.main(["--only", "smart", *rest])


if __name__ == "__main__":
    sys.exit(main())

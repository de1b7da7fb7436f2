"""What the work-due trigger (tenants.models.WorkDue) adds to a write, with pgbench.

    .venv/bin/python bench/work_due_trigger.py [--database-url URL] [--seconds 15]

In a scratch database (`<db>_bench_trigger`, dropped and re-created), one clinic's
notifications table gets the triggers its migration gives it, and pgbench runs one statement a
booking runs (three pending notification rows, one INSERT) for `--seconds` with 1 and with 4
clients: without the trigger, with the function as migration tenants.0004 wrote it (the
clinic's row read FOR KEY SHARE) and as 0005 left it (a shared advisory lock). The clinic is
already due, as under load: each statement only takes its lock and reads the mark. Prints the
mean latency and the throughput of each, and the trigger's cost per statement.
"""

import argparse
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"
STATEMENT = (
    "INSERT INTO c1.notifications_notification (status, appointment_id) "
    "SELECT 'pending', g FROM generate_series(1, 3) g;\n"
)
TABLES = """
CREATE TABLE public.tenants_workdue (
    id bigserial PRIMARY KEY, schema_name varchar(63) NOT NULL, kind varchar(32) NOT NULL,
    due_at timestamptz NOT NULL, UNIQUE (schema_name, kind));
CREATE INDEX ON public.tenants_workdue (kind, due_at);
CREATE SCHEMA c1;
CREATE TABLE c1.notifications_notification (
    id bigserial PRIMARY KEY, status varchar(16) NOT NULL, appointment_id bigint,
    created_at timestamptz DEFAULT now(), body text DEFAULT '');
"""


def _function(migration: str) -> str:
    module = importlib.import_module(f"tenants.migrations.{migration}")
    return module.WORK_CHANGED


def _psql(url: str, sql: str) -> None:
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url], input=sql, text=True, check=True)


def _pgbench(url: str, clients: int, seconds: int, script: Path) -> tuple[float, float]:
    out = subprocess.run(
        [PGBENCH, "-n", "-c", str(clients), "-j", str(clients), "-T", str(seconds)]
        + ["-f", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    latency = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    return latency, tps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgres://127.0.0.1/clinic")
    )
    parser.add_argument("--seconds", type=int, default=15)
    args = parser.parse_args()
    base, _, name = args.database_url.rpartition("/")
    scratch = f"{base}/{name.split('?')[0]}_bench_trigger"
    admin = f"{base}/postgres"
    _psql(admin, f"DROP DATABASE IF EXISTS {name.split('?')[0]}_bench_trigger;")
    _psql(admin, f"CREATE DATABASE {name.split('?')[0]}_bench_trigger;")
    _psql(scratch, TABLES)
    script = Path("/tmp/work_due_trigger.sql")
    script.write_text(STATEMENT)
    variants = {
        "no trigger": None,
        "row lock (tenants.0004)": _function("0004_work_due"),
        "advisory lock (tenants.0005)": _function("0005_work_due_any_row"),
    }
    triggers = "".join(
        f"CREATE TRIGGER work_due_{event.lower()} AFTER {event} ON c1.notifications_notification "
        "REFERENCING NEW TABLE AS changed FOR EACH STATEMENT "
        "EXECUTE FUNCTION public.clinic_work_changed('notifications', 'pending', 'sending');\n"
        for event in ("INSERT", "UPDATE")
    )
    results: dict[str, dict[int, tuple[float, float]]] = {}
    for label, function in variants.items():
        _psql(
            scratch,
            "SET client_min_messages = warning; "
            "DROP TRIGGER IF EXISTS work_due_insert ON c1.notifications_notification; "
            "DROP TRIGGER IF EXISTS work_due_update ON c1.notifications_notification;",
        )
        if function is not None:
            _psql(scratch, function + triggers)
        results[label] = {c: _pgbench(scratch, c, args.seconds, script) for c in (1, 4)}
    print(f"pgbench, {args.seconds} s a row, one INSERT of three pending notifications:")
    print("| variant | 1 client: ms | 1 client: tps | 4 clients: ms | 4 clients: tps |")
    print("| --- | --- | --- | --- | --- |")
    for label, by in results.items():
        print(f"| {label} | {by[1][0]:.3f} | {by[1][1]:,.0f} | {by[4][0]:.3f} | {by[4][1]:,.0f} |")
    bare = results["no trigger"][1][0]
    for label in list(variants)[1:]:
        print(f"{label}: {results[label][1][0] - bare:+.3f} ms a statement (1 client)")
    _psql(admin, f"DROP DATABASE {name.split('?')[0]}_bench_trigger;")


if __name__ == "__main__":
    main()

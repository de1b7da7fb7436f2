"""Provisioning speed: time to create the 1st, 10th and 100th clinic from the template schema,
and a no-op `migrate_schemas` over all of them.

    scripts/with-services .venv/bin/python bench/provision.py [--clinics 100]

Runs in its own scratch database (`<db>_bench_provision`, dropped and re-created), so it never
touches the demo or test data. The tenant-scale scenario of `make bench` (bench/run.py) drives
the same functions in steps against its own database:

    bench/provision.py --database-url URL --no-reset --start 2 --clinics 999 --json
    bench/provision.py --database-url URL --no-reset --migrate-only --json
    bench/provision.py --database-url URL --no-reset --beat-cost --json

`--beat-cost` runs each task the beat sends at a fixed interval once, in this process (what a
worker does when the beat sends it: find the clinics with work, queue their tasks), and reports
its seconds and the beat's cost per minute: each task's time × its runs per minute. Tasks it
queues go to a queue of their own that nothing consumes, purged afterwards.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def admin_url(url: str) -> tuple[str, str, str]:
    """(maintenance-database URL, database name, URL prefix without the name) of `url`."""
    import environ

    config = environ.Env.db_url_config(url)
    port = f":{config['PORT']}" if config.get("PORT") else ""
    auth = config["USER"] + (f":{config['PASSWORD']}" if config.get("PASSWORD") else "")
    prefix = f"postgres://{auth}@{config['HOST']}{port}"
    return f"{prefix}/postgres", config["NAME"], prefix


def database_recreate(url: str) -> None:
    import psycopg

    maintenance, name, _ = admin_url(url)
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def scratch_database_url() -> str:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/clinic")
    _, name, prefix = admin_url(base)
    url = f"{prefix}/{name}_bench_provision"
    database_recreate(url)
    return url


# A PostgreSQL server process keeps the catalog entries of every relation it created: one that
# cloned 1,900 schemas held 5 GB and was slower at each clone. A fresh connection every 500
# clinics, as production renews them (psycopg's pool after an hour; a worker after each task).
RECONNECT_EVERY = 500


def provision(*, start: int, count: int, prefix: str, refills: list[float] | None = None):
    """Create clinics `<prefix><start>` .. and return the seconds each took (clinic_create:
    clone of the template, domain, roles, first admin). With `refills` (a list, filled here)
    the warm pool is refilled before each clinic, as the worker does between sign-ups, and
    the seconds of each refill (one clone into the pool) go there: clinic_create then takes
    a copy from the pool."""
    from django.db import connection

    from tenants.services import ClinicAdminSpec, clinic_create, schema_pool_refill

    timings = []
    for n in range(start, start + count):
        if refills is not None:
            t0 = time.perf_counter()
            schema_pool_refill()
            refills.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        clinic_create(
            slug=f"{prefix}{n:04d}",
            name=f"Scale clinic {n}",
            timezone="America/Chicago",
            admin=ClinicAdminSpec(email=f"admin@{prefix}{n}.test", password="bench-admin-password"),
        )
        timings.append(time.perf_counter() - t0)
        if count >= 100 and (n - start + 1) % 100 == 0:
            print(f"provision: {n - start + 1}/{count} clinics", file=sys.stderr, flush=True)
        if (n - start + 1) % RECONNECT_EVERY == 0:
            connection.close()  # the server process's caches, not the clinics, grow
    return timings


def noop_migrate() -> float:
    """Seconds of `migrate_schemas` (public, every clinic, the template) with nothing to do."""
    from django.core.management import call_command

    t0 = time.perf_counter()
    call_command("migrate_schemas", verbosity=0)
    return time.perf_counter() - t0


def beat_cost(rounds: int = 3) -> dict:
    """Seconds of each interval task of `CELERY_BEAT_SCHEDULE` (the best of `rounds` runs, so
    a first run's imports and cold caches do not count) and the total per minute."""
    from django.conf import settings

    from clinic.celery import app

    app.loader.import_default_modules()  # every app's tasks module, as a worker loads them
    seconds: dict[str, float] = {}
    per_minute = 0.0
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        interval = entry["schedule"]
        if not isinstance(interval, int | float):
            continue  # a crontab: daily, not part of the per-minute cost
        task = app.tasks[entry["task"]]
        best = None
        for _ in range(rounds):
            t0 = time.perf_counter()
            task.apply(throw=True)
            took = time.perf_counter() - t0
            best = took if best is None else min(best, took)
        seconds[entry["task"]] = best or 0.0
        per_minute += (best or 0.0) * 60 / interval
    app.control.purge()  # what the tasks queued, on this run's own queue
    return {"beat_s": seconds, "beat_per_minute_s": per_minute}


def beat_after_upgrade() -> dict:
    """Seconds of each sweep of the work-due index (tenants.models.WorkDue) with every clinic
    marked due for every kind, as migrations tenants.0004 and 0005 leave them, then once more:
    the first beat after that upgrade visits and settles every clinic once."""
    from django.db import connection

    from clinic.celery import app
    from tenants.models import WORK_KINDS

    app.loader.import_default_modules()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO public.tenants_workdue (schema_name, kind, due_at) "
            "SELECT c.schema_name, k.kind, 'epoch' FROM public.tenants_clinic c "
            "CROSS JOIN unnest(%s::text[]) k(kind) WHERE c.schema_name <> 'public' "
            "ON CONFLICT (schema_name, kind) DO UPDATE SET due_at = 'epoch'",
            [list(WORK_KINDS)],
        )
    sweeps = (
        "webhooks.send_due_everywhere",
        "notifications.send_due_everywhere",
        "scheduling.sweep_smart_bookings",
        "waitlist.sweep_everywhere",
        "scheduling.refresh_next_available_everywhere",
    )
    figures: dict[str, dict[str, float]] = {"first_s": {}, "second_s": {}}
    for run in figures.values():
        for name in sweeps:
            t0 = time.perf_counter()
            app.tasks[name].apply(throw=True)
            run[name] = time.perf_counter() - t0
    app.control.purge()
    return figures


def schema_count() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tenants_clinic WHERE schema_name <> 'public'")
        return cursor.fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clinics", type=int, default=100)
    parser.add_argument("--database-url", help="use this database (default: a scratch one)")
    parser.add_argument("--no-reset", action="store_true", help="keep the database's contents")
    parser.add_argument("--start", type=int, default=1, help="number of the first clinic")
    parser.add_argument("--prefix", default="bench")
    parser.add_argument("--migrate-only", action="store_true")
    parser.add_argument("--beat-cost", action="store_true", help="time the beat's interval tasks")
    parser.add_argument(
        "--beat-after-upgrade",
        action="store_true",
        help="mark every clinic due for every kind of work, time each sweep twice",
    )
    parser.add_argument(
        "--pool", type=int, default=0, help="keep this many template copies ready (warm pool)"
    )
    parser.add_argument("--json", action="store_true", help="print figures as JSON")
    args = parser.parse_args()

    if args.database_url:
        if not args.no_reset:
            database_recreate(args.database_url)
        os.environ["DATABASE_URL"] = args.database_url
    else:
        os.environ["DATABASE_URL"] = scratch_database_url()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")
    os.environ.setdefault("CLINIC_FAST_PASSWORD_HASHER", "1")
    os.environ["CLINIC_SCHEMA_POOL_SIZE"] = str(args.pool)
    # What the tasks queue goes where no worker listens.
    if args.beat_cost or args.beat_after_upgrade or args.pool:
        for name in (
            "CELERY_QUEUE",
            "SMART_BOOKING_QUEUE",
            "NOTIFICATIONS_QUEUE",
            "WEBHOOKS_QUEUE",
        ):
            os.environ[name] = f"bench-beat-cost-{os.getpid()}"
    import django

    django.setup()

    if args.beat_cost:
        print(json.dumps({**beat_cost(), "clinics": schema_count()}))
        return
    if args.beat_after_upgrade:
        print(json.dumps({**beat_after_upgrade(), "clinics": schema_count()}))
        return

    if args.migrate_only:
        seconds = noop_migrate()
        print(json.dumps({"noop_migrate_s": seconds, "clinics": schema_count()}))
        return

    first_migrate = None
    if not args.no_reset:
        from django.core.management import call_command

        started = time.perf_counter()
        call_command("migrate_schemas", verbosity=0)
        first_migrate = time.perf_counter() - started

    refills: list[float] | None = [] if args.pool else None
    timings = provision(start=args.start, count=args.clinics, prefix=args.prefix, refills=refills)
    if args.pool:  # the refills the provisionings queued (the loop above made them itself)
        from clinic.celery import app

        app.control.purge()
    if args.json:
        print(json.dumps({"provision_s": timings, "refill_s": refills, "clinics": schema_count()}))
        return
    noop = noop_migrate()

    def at(n: int) -> str:
        return f"{timings[n - 1]:.2f} s" if n <= len(timings) else "n/a"

    print(f"# Provisioning benchmark ({args.clinics} clinics, this machine, one process)")
    print(f"command: {' '.join(sys.argv)}")
    print("| measure | seconds |")
    print("| --- | --- |")
    if first_migrate is not None:
        print(f"| migrate public + template (empty database) | {first_migrate:.2f} |")
    for n in sorted({1, 10, 100, args.clinics}):
        if n <= args.clinics:
            print(f"| provision clinic #{n} | {at(n)} |")
    print(f"| provision median / max | {statistics.median(timings):.2f} / {max(timings):.2f} |")
    print(f"| no-op migrate_schemas over {args.clinics} clinics + template | {noop:.2f} |")


if __name__ == "__main__":
    main()

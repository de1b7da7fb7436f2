"""Provisioning speed: time to create the 1st, 10th and 100th clinic from the template schema,
and a no-op `migrate_schemas` over all of them.

    scripts/with-services .venv/bin/python bench/provision.py [--clinics 100]

Runs in its own scratch database (`<db>_bench_provision`, dropped and re-created), so it never
touches the demo or test data.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def scratch_database_url() -> str:
    import environ

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/clinic")
    config = environ.Env.db_url_config(base)
    name = f"{config['NAME']}_bench_provision"
    port = f":{config['PORT']}" if config.get("PORT") else ""
    auth = config["USER"] + (f":{config['PASSWORD']}" if config.get("PASSWORD") else "")
    admin_url = f"postgresql://{auth}@{config['HOST']}{port}/postgres"
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgres://{auth}@{config['HOST']}{port}/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clinics", type=int, default=100)
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = scratch_database_url()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")
    os.environ.setdefault("CLINIC_FAST_PASSWORD_HASHER", "1")
    import django

    django.setup()
    from django.core.management import call_command

    from tenants.services import ClinicAdminSpec, clinic_create

    started = time.perf_counter()
    call_command("migrate_schemas", verbosity=0)
    first_migrate = time.perf_counter() - started

    timings = []
    for n in range(1, args.clinics + 1):
        t0 = time.perf_counter()
        clinic_create(
            slug=f"bench{n:04d}",
            name=f"Bench clinic {n}",
            timezone="America/Chicago",
            admin=ClinicAdminSpec(email=f"admin@bench{n}.test", password="bench-admin-password"),
        )
        timings.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    call_command("migrate_schemas", verbosity=0)
    noop_migrate = time.perf_counter() - t0

    def at(n: int) -> str:
        return f"{timings[n - 1]:.2f} s" if n <= len(timings) else "n/a"

    print(f"# Provisioning benchmark ({args.clinics} clinics, this machine, one process)")
    print(f"command: {' '.join(sys.argv)}")
    print("| measure | seconds |")
    print("| --- | --- |")
    print(f"| migrate public + template (empty database) | {first_migrate:.2f} |")
    for n in sorted({1, 10, 100, args.clinics}):
        if n <= args.clinics:
            print(f"| provision clinic #{n} | {at(n)} |")
    print(f"| provision median / max | {statistics.median(timings):.2f} / {max(timings):.2f} |")
    print(f"| no-op migrate_schemas over {args.clinics} clinics + template | {noop_migrate:.2f} |")


if __name__ == "__main__":
    main()

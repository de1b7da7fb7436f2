"""`make bench`: build the data set, start the app in its production layout, run the scenarios,
write `bench/results/<date>-<git sha>.json` and print a Markdown table.

    scripts/with-services .venv/bin/python bench/run.py [--only search,ceiling] [--quick]
    scripts/with-services .venv/bin/python bench/run.py --smoke        # make bench-smoke
    bench/run.py --list

Uses DATABASE_URL / REDIS_URL when set, else the project's private embedded PostgreSQL and
Redis (scripts/services.py). The data lives in a dedicated database `<name>_bench` (created on
first use, seeded by bench/seed.py, reused afterwards), never the demo or test database.
Exit status: 1 when an invariant broke (any 5xx, a transport error, a failed database check,
a scenario that crashed), never because a figure missed its target.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import servers  # noqa: E402
from bench.harness import (  # noqa: E402
    FULL,
    QUICK,
    SCENARIOS,
    SMOKE,
    Check,
    Context,
    Row,
)
from bench.load import SAME_MACHINE, wrk_available, wrk_binary  # noqa: E402
from bench.provision import admin_url  # noqa: E402
from bench.scenarios import load_all  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated scenario names (see --list)")
    parser.add_argument("--quick", action="store_true", help="shorter durations (10 s / 15 s)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the invariant scenarios at small scale; fails only on broken invariants",
    )
    parser.add_argument(
        "--clinics", type=int, help="tenant_scale: clinics to provision (default 1000)"
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", 18000)))
    parser.add_argument("--output", type=Path, help="results JSON path")
    parser.add_argument("--profile", help="comma-separated scenarios to profile with py-spy")
    parser.add_argument(
        "--profile-format", choices=("flamegraph", "speedscope"), default="flamegraph"
    )
    parser.add_argument("--keep-scale-db", action="store_true", help="tenant_scale: keep its DB")
    parser.add_argument(
        "--before",
        metavar="REF",
        help="computed: also measure the computed rows on this git commit (a worktree of it), "
        "in the same run, for a before/after ratio",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    return parser.parse_args(argv)


def select(args: argparse.Namespace) -> list[str]:
    ordered = sorted(SCENARIOS.values(), key=lambda s: s.order)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown:
            raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}; see --list")
        if any(SCENARIOS[n].needs_ceiling for n in names) and "ceiling" not in names:
            names.append("ceiling")  # ratios need the ceiling of this same run
    elif args.smoke:
        names = [s.name for s in ordered if s.smoke]
    else:
        names = [s.name for s in ordered if s.default]
    return [s.name for s in ordered if s.name in names]


def service_urls() -> dict[str, str]:
    """DATABASE_URL / REDIS_URL from the environment, else from the private services."""
    urls = {k: os.environ[k] for k in ("DATABASE_URL", "REDIS_URL") if os.environ.get(k)}
    if len(urls) < 2:
        out = subprocess.run(
            [sys.executable, "scripts/services.py", "up"],
            cwd=ROOT,
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
        for line in out.splitlines():
            key, _, value = line.partition("=")
            if key in ("DATABASE_URL", "REDIS_URL"):
                urls.setdefault(key, value)
    return urls


def bench_database(url: str) -> str:
    """`<name>_bench` next to the configured database; created if missing."""
    import psycopg

    maintenance, name, prefix = admin_url(url)
    bench_name = name if name.endswith("_bench") else f"{name}_bench"
    with psycopg.connect(maintenance, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [bench_name])
        if exists.fetchone() is None:
            log(f"creating database {bench_name}")
            conn.execute(f'CREATE DATABASE "{bench_name}"')
    return f"{prefix}/{bench_name}"


def git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine() -> dict:
    cpu = ""
    try:
        match = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = match.group(1) if match else ""
        mem_kb = int(re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text()).group(1))
    except (OSError, AttributeError):
        mem_kb = 0
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def server_env(urls: dict[str, str], database_url: str, port: int) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("DB_POOL_MAX_SIZE", "DJANGO_SETTINGS_MODULE", "CLINIC_DOMAIN_CACHE_SECONDS"):
        env.pop(key, None)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=urls["REDIS_URL"],
        DJANGO_SETTINGS_MODULE="bench.settings",  # production settings + /bench/ceiling/
        DEBUG="0",
        CLINIC_HTTP_PORT=str(port),
        CLINIC_WS_PORT=str(port + 1),
        CLINIC_FAST_PASSWORD_HASHER="0",
        # A private queue and key prefixes: never share a worker or keys with `make run`/tests.
        CELERY_QUEUE=f"clinic-bench-{os.getpid()}",
        CACHE_KEY_PREFIX=f"clinic-bench-{os.getpid()}",
        CHANNEL_LAYER_PREFIX=f"clinic-bench-{os.getpid()}:asgi",
        # The throttles still run (a Redis round trip per request, as in production) but a
        # single load generator address must not be refused: the scenarios measure answers.
        THROTTLE_ANON="100000000/min",
        THROTTLE_USER="100000000/min",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        PATH=f"{servers.BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


def backends_of(database_url: str):
    """A function listing the pids of the PostgreSQL backends (autovacuum included) that serve
    the bench database and its scratch databases, for the CPU accounting."""
    import psycopg

    _, name, _ = admin_url(database_url)
    state: dict[str, psycopg.Connection] = {}

    def pids() -> list[int]:
        try:
            if "conn" not in state or state["conn"].closed:
                state["conn"] = psycopg.connect(database_url, autocommit=True)
            rows = state["conn"].execute(
                "SELECT pid FROM pg_stat_activity WHERE datname LIKE %s "
                "AND pid <> pg_backend_pid()",
                [name.replace("_", r"\_") + "%"],
            )
            return [pid for (pid,) in rows]
        except psycopg.Error:
            return []

    return pids


def postgres_version(url: str) -> str:
    import psycopg

    try:
        with psycopg.connect(url) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except psycopg.Error:
        return "?"


class Profiler:
    """py-spy attached to the web server (and its workers) for one scenario."""

    def __init__(self, pid: int, path: Path, fmt: str):
        self.path = path
        binary = servers.BIN / "py-spy"
        if not binary.exists():
            raise RuntimeError("py-spy is missing: pip install -r requirements.txt")
        self.proc = subprocess.Popen(
            [
                str(binary),
                "record",
                "--pid",
                str(pid),
                "--subprocesses",
                "--rate",
                "100",
                "--format",
                fmt,
                "--output",
                str(path),
                "--nonblocking",
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            err = ""
        if self.path.exists():
            log(f"profile written to {self.path.relative_to(ROOT)}")
        else:
            log(f"py-spy wrote no profile: {err.strip()[-500:]}")


def run_scenario(ctx: Context, name: str, profile_path: Path | None, fmt: str) -> list[Row]:
    scenario = SCENARIOS[name]
    log(f"scenario {name}: {scenario.title}")
    started = time.perf_counter()
    profiler = Profiler(ctx.web.pid, profile_path, fmt) if profile_path else None
    try:
        rows = scenario.func(ctx)
    except Exception as exc:  # noqa: BLE001  (one crashed scenario must not hide the others)
        traceback.print_exc()
        rows = [
            Row(
                scenario=name,
                label=f"{name}: crashed",
                checks=[Check("the scenario ran", False, f"{type(exc).__name__}: {exc}"[:500])],
            )
        ]
    finally:
        if profiler:
            profiler.stop()
    # Every scenario: the web workers it started with are still the ones serving.
    workers = sorted(ctx.web.worker_pids())
    if workers != ctx.web.worker_pids_at_start and rows:
        rows[-1].checks.append(
            Check(
                "web workers alive",
                False,
                f"workers {ctx.web.worker_pids_at_start} are now {workers} (crash/respawn)",
            )
        )
    log(f"scenario {name}: {time.perf_counter() - started:.0f} s")
    return rows


def fmt_num(value, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def table(rows: list[Row]) -> str:
    head = (
        "| scenario | offered | achieved req/s | p50 ms | p95 ms | p99 ms | max ms | errors "
        "| × ceiling | × cached ceiling | server CPU ms/req | target | result | notes |"
    )
    lines = [head, "|" + " --- |" * 14]
    for row in rows:
        errors = fmt_num(row.errors, 0)
        if row.errors_by_kind:
            errors += " (" + ", ".join(f"{k}: {v:,}" for k, v in row.errors_by_kind.items()) + ")"
        result = {True: "pass", False: "FAIL", None: "—"}[row.passed]
        if row.broken:
            result = "BROKEN" if row.passed is None else f"{result}, BROKEN"
        checks = [
            f"{c.name}: {'ok' if c.ok else 'BROKEN' if c.ok is False else 'skipped'}"
            + (f" ({c.detail})" if c.detail else "")
            for c in row.checks
        ]
        notes = "; ".join(filter(None, [row.notes, *checks])).replace("|", "/")
        lines.append(
            f"| {row.label} | {row.offered} | {fmt_num(row.achieved_rps)} | "
            f"{fmt_num(row.p50_ms, 2)} | {fmt_num(row.p95_ms, 2)} | {fmt_num(row.p99_ms, 2)} | "
            f"{fmt_num(row.max_ms, 1)} | {errors} | "
            f"{'—' if row.ratio is None else f'{row.ratio:.2f}'} | "
            f"{'—' if row.ratio_cached is None else f'{row.ratio_cached:.2f}'} | "
            f"{fmt_num(row.server_cpu_ms, 3)} | {row.target or '—'} | "
            f"{result} | {notes} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    load_all()
    args = parse_args(argv)
    if args.list:
        for s in sorted(SCENARIOS.values(), key=lambda s: s.order):
            flags = ", ".join(f for f, on in (("smoke", s.smoke), ("default", s.default)) if on)
            print(f"{s.name:18} {s.title} [{flags}]")
        return 0
    names = select(args)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    durations = {"smoke": SMOKE, "quick": QUICK, "full": FULL}[mode]
    profile = {n.strip() for n in (args.profile or "").split(",") if n.strip()}
    if mode != "smoke":
        wrk_binary()  # fail early with the install hint; smoke runs can do without it

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started_at = datetime.datetime.now()
    sha = git("rev-parse", "--short", "HEAD") or "nogit"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    urls = service_urls()
    database_url = bench_database(urls["DATABASE_URL"])
    port = args.port
    ports = {"web": port, "ws": port + 1, "extra": port + 2}
    env = server_env(urls, database_url, port)
    log_dir = ROOT / ".run" / "bench" / f"logs-{os.getpid()}"

    log(f"seeding {database_url.rsplit('/', 1)[-1]} (bench/seed.py)")
    seed_started = time.perf_counter()
    subprocess.run([sys.executable, "bench/seed.py"], cwd=ROOT, env=env, check=True)
    seed_s = time.perf_counter() - seed_started
    if not (ROOT / ".run" / "static").is_dir():
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )

    # This process checks the database after each scenario: Django on the bench database.
    os.environ.update(DATABASE_URL=database_url, REDIS_URL=urls["REDIS_URL"])
    os.environ["DJANGO_SETTINGS_MODULE"] = "clinic.settings"
    import django

    django.setup()

    rows: list[Row] = []
    layout: list[str] = []
    with servers.Stack(log_dir) as stack:
        host = f"bench.{env.get('CLINIC_BASE_DOMAIN', 'localhost')}"
        stack.start(servers.celery_worker(env=env, log_dir=log_dir, queue=env["CELERY_QUEUE"]))
        stack.start(servers.celery_beat(env=env, log_dir=log_dir))
        stack.start(servers.daphne(port=ports["ws"], env=env, log_dir=log_dir))
        web = stack.start(
            servers.granian(
                name="web", port=ports["web"], env=env, log_dir=log_dir, ready_host=host
            )  # fmt: skip
        )
        layout = [s.description for s in stack.services]
        log("servers up: " + "; ".join(layout))
        ctx = Context(
            mode=mode,
            durations=durations,
            stack=stack,
            web=web,
            env=env,
            log_dir=log_dir,
            results_dir=RESULTS,
            base_domain=env.get("CLINIC_BASE_DOMAIN", "localhost"),
            ports=ports,
            database_url=database_url,
            options={
                "clinics": args.clinics,
                "keep_scale_db": args.keep_scale_db,
                "before": args.before,
            },
            rss_at_start={pid: servers.memory_kb(pid) for pid in web.worker_pids()},
            pg_backends=backends_of(database_url),
            pg_data=servers.pg_data_directory(),
        )
        for name in names:
            profile_path = None
            if name in profile:
                RESULTS.mkdir(parents=True, exist_ok=True)
                ext = "svg" if args.profile_format == "flamegraph" else "speedscope.json"
                stamp = started_at.strftime("%Y-%m-%d-%H%M%S")
                profile_path = RESULTS / f"profile-{name}-{stamp}-{sha}.{ext}"
            rows += run_scenario(ctx, name, profile_path, args.profile_format)
    for row in rows:
        if row.ratio is not None and ctx.ceiling_cached_rps and row.achieved_rps:
            row.ratio_cached = round(row.achieved_rps / ctx.ceiling_cached_rps, 3)

    broken = [f"{r.label}: {b}" for r in rows for b in r.broken]
    meta = {
        "date": started_at.isoformat(timespec="seconds"),
        "git_sha": sha,
        "git_dirty": dirty,
        "mode": mode,
        "scenarios": names,
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "machine": machine(),
        "postgresql": postgres_version(database_url),
        "database": database_url.rsplit("/", 1)[-1],
        "servers": layout,
        "debug": False,
        "load_generators": {
            "capacity": (
                "wrk" if wrk_available() else "bench/load.py (wrk not installed: smoke only)"
            )
            + f", closed loop, 50 connections, {durations.capacity_s:g} s",
            "latency": "bench/load.py, open loop at a fixed rate, timed from each request's "
            f"scheduled send time, {durations.latency_s:g} s",
            "where": SAME_MACHINE,
        },
        "ceiling_rps": ctx.ceiling_rps,
        "ceiling_config": "JSON view behind the tenant middleware, one domain query per request "
        "(CLINIC_DOMAIN_CACHE_SECONDS=0), as issue 9 defines it",
        "ceiling_cached_rps": ctx.ceiling_cached_rps,
        "ceiling_cached_config": "the same view with the per-process host cache on (default "
        "CLINIC_DOMAIN_CACHE_SECONDS): no query, the configuration every scenario runs with",
        "seed_s": round(seed_s, 1),
        "duration_s": round((datetime.datetime.now() - started_at).total_seconds(), 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "-smoke" if mode == "smoke" else f"-{'-'.join(names)}" if args.only else ""
    output = args.output or RESULTS / f"{started_at:%Y-%m-%d}-{sha}{suffix}.json"
    output.write_text(
        json.dumps({"meta": meta, "rows": [r.to_dict() for r in rows], "broken": broken}, indent=2)
    )

    print(f"## Clinic benchmarks — {meta['date']}, git {sha}{' (dirty)' if dirty else ''}, {mode}")
    print()
    m = meta["machine"]
    print(f"- machine: {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB; PostgreSQL "
          f"{meta['postgresql']}; Python {m['python']}")  # fmt: skip
    print("- servers (DEBUG=0): " + "; ".join(layout))
    print(f"- load generators, {SAME_MACHINE}: capacity = {meta['load_generators']['capacity']}; "
          f"latency = {meta['load_generators']['latency']}")  # fmt: skip
    if ctx.ceiling_rps:
        print(f"- ratios (× ceiling) use the tenant ceiling of this run, {ctx.ceiling_rps:,.0f} "
              "req/s: the JSON view behind the tenant middleware doing its one domain query "
              "(issue 9's definition)")  # fmt: skip
    if ctx.ceiling_cached_rps:
        cached = f"{ctx.ceiling_cached_rps:,.0f} req/s"
        print(f"- × cached ceiling: the same view with the host cache on (no query, the "
              f"configuration every scenario runs), {cached}")  # fmt: skip
    print(f"- results: {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")
    print()
    print(table(rows))
    print()
    if broken:
        print("BROKEN INVARIANTS:")
        for line in broken:
            print(f"- {line}")
        return 1
    print("invariants: all held (targets on figures never fail the run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

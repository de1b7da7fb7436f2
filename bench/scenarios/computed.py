"""Issue 21 part 6: the computed path, beside a peer's unit of work.

A popular Django booking package answers one practitioner's slots for one day. Measured on this
machine kind (2026-12-05, wrk, 50 connections): the package 60 req/s; Clinic 192 req/s with the
answer cache off, 625 req/s as configured. Here the same unit of work,
`GET /api/v1/availability/?practitioner=<id>&appointment_type=<30-min visit>&start=<day>&end=<day>
&tz=America/New_York`, cycling through the 20 practitioners of the bench specialty and the next
7 weekdays (140 distinct answers), at 50 connections:

- answer cache off (`ANSWER_CACHE_SECONDS=0`: every answer read from the database): target
  ≥ 0.15 × the host-cached ceiling; with `--before REF` the same request mix on REF's code, in
  the same run (a git worktree of REF served by an identical granian): target ≥ 3 × before;
- as configured (answers shared through Redis until the schedule changes);
- authenticated (the integrator's JWT) as configured: target ≥ 0.4 × the host-cached ceiling;
- practitioner search with the answer cache off (scenario 1's requests): ≥ 0.15 × the
  host-cached ceiling (and on REF with `--before`).

Afterwards the computed answers of a sample equal `scheduling.availability` in-process."""

import json
import subprocess
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.bench_clinic import access_token, bench_ids, in_bench
from bench.harness import Check, Context, Row, Target, row_from, scenario
from bench.load import LoadResult, Request
from bench.scenarios.search import search_requests
from bench.seed import INTEGRATOR_EMAIL
from bench.servers import ROOT, Service, http_get

TZ = "America/New_York"
DAYS = 7
COMPUTED_TARGET = Target(cached_ratio_min=0.15)  # × the host-cached ceiling
AUTHENTICATED_TARGET = Target(cached_ratio_min=0.4)
SPEEDUP_MIN = 3.0  # after / before, same run
PEER_NOTE = "peer (a Django booking package, same unit of work, 2026-12-05): 60 req/s"


def _weekdays() -> list[date]:
    day, found = datetime.now(ZoneInfo(TZ)).date(), []
    while len(found) < DAYS:
        day += timedelta(days=1)
        if day.weekday() < 5:
            found.append(day)
    return found


def day_path(practitioner: int, type_id: int, day: date) -> str:
    return (
        f"/api/v1/availability/?practitioner={practitioner}&appointment_type={type_id}"
        f"&start={day}&end={day}&tz={TZ}"
    )


def _practitioners(specialty: str) -> list[int]:
    from practice.models import Practitioner

    with in_bench():
        found = Practitioner.objects.filter(specialties__slug=specialty, is_active=True)
        return sorted(found.values_list("pk", flat=True))


def day_requests(headers: dict[str, str] | None = None) -> list[Request]:
    ids = bench_ids()
    return [
        Request(day_path(p, ids.visit_type, day), headers=headers or {})
        for day in _weekdays()
        for p in _practitioners(ids.specialty)
    ]


def _before_tree(ref: str) -> Path:
    """A worktree of `ref` under .run/bench (made once, reused by later runs)."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    tree = ROOT / ".run" / "bench" / f"before-{sha}"
    if not (tree / "manage.py").exists():
        subprocess.run(
            ["git", "worktree", "add", "--force", "--detach", str(tree), sha],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
    return tree


def _compare(after: Row, before: Row, ref: str, *, minimum: float | None = None) -> None:
    """Note `after`'s req/s as a multiple of `before`'s (same run); with `minimum`, a target."""
    speedup = (after.achieved_rps or 0) / before.achieved_rps if before.achieved_rps else None
    if minimum is not None:
        after.target = "; ".join(filter(None, [after.target, f"≥ {minimum:g} × before"]))
    if speedup is not None:
        if minimum is not None:
            after.passed = bool(after.passed is not False and speedup >= minimum)
        after.notes = "; ".join([after.notes, f"{speedup:.2f} × {ref} in this run"])
        after.data["speedup"] = round(speedup, 3)


def answers_match_selector(ctx: Context, server: Service) -> Check:
    """A sample of computed answers (every practitioner, the first and last day) equals
    `scheduling.availability.availability` computed in-process."""
    from scheduling.availability import availability
    from scheduling.models import AppointmentType

    ids, tz = bench_ids(), ZoneInfo(TZ)
    wrong, compared = [], 0
    for day in (_weekdays()[0], _weekdays()[-1]):
        for practitioner in _practitioners(ids.specialty):
            status, body = http_get(
                server.port, day_path(practitioner, ids.visit_type, day), ctx.host()
            )
            if status != 200:
                wrong.append(f"{practitioner} {day}: HTTP {status}")
                continue
            api = {
                (datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"]))
                for p in json.loads(body)["practitioners"]
                for s in p["slots"]
            }
            with in_bench():
                results = availability(
                    appointment_type=AppointmentType.objects.get(pk=ids.visit_type),
                    start=datetime.combine(day, time.min, tzinfo=tz),
                    end=datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz),
                    practitioner_ids=[practitioner],
                )
            expected = {(s.start, s.end) for r in results for s in r.slots}
            compared += len(expected)
            if api != expected:
                wrong.append(f"{practitioner} {day}: {len(api ^ expected)} slots differ")
    return Check(
        "computed slots equal scheduling.availability",
        not wrong,
        "; ".join(wrong[:5]) or f"{compared} slots",
    )


@scenario(
    "computed",
    title="Issue 21: the computed path: one practitioner-day of availability, search (cache off)",
    order=27,
    needs_ceiling=True,
    smoke=False,
)
def computed(ctx: Context) -> list[Row]:
    anonymous = day_requests()
    signed_in = day_requests({"Authorization": f"Bearer {access_token(ctx, INTEGRATOR_EMAIL)}"})
    search = search_requests(ctx)

    def row(label: str, result: LoadResult, target: Target | None = None, notes: str = "") -> Row:
        return row_from(
            "computed",
            label,
            result,
            target=target,
            ceiling_rps=ctx.ceiling_rps,
            ceiling_cached_rps=ctx.ceiling_cached_rps,
            notes=notes,
        )

    def measure(server: Service, where: str, *, judged: bool) -> tuple[Row, Row]:
        target = COMPUTED_TARGET if judged else None
        notes = "every answer from the database" if judged else ""
        day = row(
            f"availability, 1 practitioner-day, answer cache off{where}: capacity",
            ctx.capacity(anonymous, server=server),
            target,
            f"{notes}; {PEER_NOTE}" if judged else notes,
        )
        found = row(
            f"search, answer cache off{where}: capacity",
            ctx.capacity(search, server=server),
            target,
            notes,
        )
        return day, found

    server = ctx.start_web_uncached()
    try:
        day_row, search_row = measure(server, "", judged=True)
        day_row.checks.append(answers_match_selector(ctx, server))
    finally:
        ctx.stack.stop(server)
    rows = [day_row, search_row]

    ref = ctx.options.get("before")
    if ref:
        tree = _before_tree(ref)
        old = ctx.start_web(
            "web-before", port=ctx.ports["extra"], env={"ANSWER_CACHE_SECONDS": "0"}, cwd=tree
        )
        try:
            day_before, search_before = measure(old, f", before ({ref})", judged=False)
        finally:
            ctx.stack.stop(old)
        for before in (day_before, search_before):
            before.notes = f"git worktree of {ref} ({tree.name}), same flags, same database"
        _compare(day_row, day_before, ref, minimum=SPEEDUP_MIN)
        _compare(search_row, search_before, ref)
        rows += [day_before, search_before]

    rows.append(
        row(
            "availability, 1 practitioner-day, as configured: capacity",
            ctx.capacity(anonymous),
            notes="answers shared through Redis until the schedule changes",
        )
    )
    rows.append(
        row(
            "availability, 1 practitioner-day, integrator's JWT, as configured: capacity",
            ctx.capacity(signed_in),
            AUTHENTICATED_TARGET,
            "the JWT's user read on every request",
        )
    )
    return rows

"""Scenario 8: resident memory of the web workers (granian worker processes, read from /proc)
before and after a load of every registered request mix (`load_mix`) at 50 connections."""

from bench.harness import LOAD_MIXES, Check, Context, Row, row_from, scenario
from bench.servers import memory_kb

GROWTH_LIMIT_MB = 50


def _mb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024, 1)


@scenario("memory", title="Scenario 8: web worker memory under load", order=80, smoke=False)
def memory(ctx: Context) -> list[Row]:
    pids = ctx.web.worker_pids()
    before = {pid: memory_kb(pid) for pid in pids}
    requests = [request for mix in LOAD_MIXES.values() for request in mix(ctx)]
    result = ctx.capacity(requests, duration_s=ctx.durations.memory_s, warmup_requests=[])
    after_pids = ctx.web.worker_pids()
    after = {pid: memory_kb(pid) for pid in after_pids}
    growth = {
        pid: _mb(after[pid].get("VmRSS", 0) - before[pid].get("VmRSS", 0))
        for pid in pids
        if pid in after
    }
    workers = []
    for pid in pids:
        start = ctx.rss_at_start.get(pid, {}).get("VmRSS")
        workers.append(
            {
                "pid": pid,
                "rss_at_server_start_mb": _mb(start),
                "rss_before_mb": _mb(before[pid].get("VmRSS")),
                "rss_after_mb": _mb(after.get(pid, {}).get("VmRSS")),
                "pss_after_mb": _mb(after.get(pid, {}).get("Pss")),
                "peak_rss_mb": _mb(after.get(pid, {}).get("VmHWM")),
                "growth_mb": growth.get(pid),
            }
        )
    same = sorted(after_pids) == sorted(pids)
    row = row_from(
        "memory",
        f"memory: {len(LOAD_MIXES)} request mixes, {ctx.durations.memory_s:g} s",
        result,
        ceiling_rps=ctx.ceiling_rps,
        checks=[
            Check(
                "no web worker died or was respawned",
                same,
                "" if same else f"workers {pids} became {after_pids}",
            )
        ],
        notes="RSS MB before → after: "
        + ", ".join(f"{w['rss_before_mb']} → {w['rss_after_mb']}" for w in workers)
        + " (at server start: "
        + ", ".join(str(w["rss_at_server_start_mb"]) for w in workers)
        + f"); mixes: {', '.join(LOAD_MIXES)}",
    )
    row.ratio = None  # a mix, not one endpoint: no ratio to the ceiling
    row.target = f"< {GROWTH_LIMIT_MB} MB growth per worker"
    row.passed = bool(growth) and all(
        g is not None and g < GROWTH_LIMIT_MB for g in growth.values()
    )
    row.data["workers"] = workers
    return [row]

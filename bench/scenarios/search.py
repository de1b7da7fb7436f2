"""Scenario 1 (practice issue): anonymous practitioner search on the bench clinic,
`GET /api/v1/practitioners/?specialty=<slug>&language=es&page_size=20`, cycling through the
8 specialties (200 practitioners). Until the practice API lands the endpoint answers 404, which
the run reports as errors."""

import json

from bench.harness import Check, Context, Row, Target, load_mix, row_from, scenario
from bench.load import LoadResult, Request
from bench.seed import SPECIALTIES
from bench.servers import Service, http_get

LATENCY_RATE = 200
LATENCY_TARGET = Target(p95_ms=10, p99_ms=25)
CAPACITY_TARGET = Target(ratio_min=0.35)
CACHED_NOTE = "as configured: answers shared through Redis until the directory changes"
UNCACHED_NOTE = "ANSWER_CACHE_SECONDS=0 (second granian, same flags): every answer computed"


def search_path(slug: str) -> str:
    return f"/api/v1/practitioners/?specialty={slug}&language=es&page_size=20"


@load_mix("search")
def search_requests(ctx: Context) -> list[Request]:
    return [Request(search_path(slug)) for slug, _ in SPECIALTIES]


def search_latency(ctx: Context, *, server: Service | None = None) -> LoadResult:
    requests = search_requests(ctx)
    return ctx.latency(lambda i: requests[i % len(requests)], rate=LATENCY_RATE, server=server)


def search_matches_database(ctx: Context, server: Service | None = None) -> Check:
    """Each specialty's `count` equals the active Spanish-speaking practitioners in the
    database (skipped while the endpoint is missing)."""
    server = server or ctx.web
    expected = dict(
        ctx.sql(
            "SELECT s.slug, count(DISTINCT p.id) FROM practice_practitioner p "
            "JOIN practice_practitioner_specialties ps ON ps.practitioner_id = p.id "
            "JOIN practice_specialty s ON s.id = ps.specialty_id "
            "WHERE p.is_active AND 'es' = ANY(p.languages) GROUP BY s.slug"
        )
    )
    wrong = []
    for slug, _ in SPECIALTIES:
        status, body = http_get(server.port, search_path(slug), ctx.host())
        if status == 404:
            return Check("counts match the database", None, "endpoint not there yet (404)")
        if status != 200:
            wrong.append(f"{slug}: HTTP {status}")
            continue
        try:
            count = json.loads(body)["count"]
        except (ValueError, KeyError, TypeError):
            return Check("counts match the database", None, "no paginated `count` in the answer")
        if count != expected.get(slug, 0):
            wrong.append(f"{slug}: API {count}, database {expected.get(slug, 0)}")
    return Check("counts match the database", not wrong, "; ".join(wrong))


@scenario(
    "search",
    title="Scenario 1: practitioner search (specialty + language), anonymous",
    order=20,
    needs_ceiling=True,
    smoke=True,
)
def search(ctx: Context) -> list[Row]:
    rows = []
    if not ctx.smoke:
        cap = ctx.capacity(search_requests(ctx))
        rows.append(
            row_from(
                "search",
                "search: capacity",
                cap,
                target=CAPACITY_TARGET,
                ceiling_rps=ctx.ceiling_rps,
            )
        )
    lat = search_latency(ctx)
    rows.append(
        row_from(
            "search",
            "search: latency",
            lat,
            target=LATENCY_TARGET,
            checks=[search_matches_database(ctx)],
            notes=CACHED_NOTE,
        )
    )
    if not ctx.smoke:
        server = ctx.start_web_uncached()
        try:
            cap = ctx.capacity(search_requests(ctx), server=server)
            lat = search_latency(ctx, server=server)
            check = search_matches_database(ctx, server)
        finally:
            ctx.stack.stop(server)
        rows += [
            row_from(
                "search",
                "search, answer cache off: capacity",
                cap,
                target=CAPACITY_TARGET,
                ceiling_rps=ctx.ceiling_rps,
                notes=UNCACHED_NOTE,
            ),
            row_from(
                "search",
                "search, answer cache off: latency",
                lat,
                target=LATENCY_TARGET,
                checks=[check],
                notes=UNCACHED_NOTE,
            ),
        ]
    return rows

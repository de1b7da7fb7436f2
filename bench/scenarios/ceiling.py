"""The ceilings every capacity figure is compared with, measured in the same run with the same
server flags: a plain Django JSON view behind the tenant middleware doing its one domain query
(issue 9's ceiling, the ratios' base), the same with the per-process host cache on (no query at
all: what every scenario's server runs with), and the view without the tenant middleware (no
database)."""

from bench.harness import Check, Context, Row, load_mix, row_from, scenario
from bench.load import LoadResult, Request

CEILING_PATH = "/bench/ceiling/"


def _all_200(result: LoadResult) -> Check:
    others = {code: n for code, n in result.statuses.items() if code != "200"}
    return Check("every answer is 200", not others, f"other statuses: {others}" if others else "")


@load_mix("ceiling")
def ceiling_requests(ctx: Context) -> list[Request]:
    return [Request(CEILING_PATH)]


@scenario(
    "ceiling",
    title="Ceiling: plain JSON view behind the tenant middleware (one domain query), and with "
    "the host cache on",
    order=10,
    smoke=True,
)
def ceiling(ctx: Context) -> list[Row]:
    """The ratios' base is issue 9's ceiling: the view behind the tenant middleware doing its
    one domain lookup, on a second granian with the same flags and the host cache off. The
    servers every scenario runs keep the cache on (the default), so the same view there does
    no query at all: measured too, as each capacity row's `× cached ceiling`."""
    cached = ctx.capacity(ceiling_requests(ctx))
    ctx.ceiling_cached_rps = cached.achieved_rps
    server = ctx.start_web(
        "web-nocache", port=ctx.ports["extra"], env={"CLINIC_DOMAIN_CACHE_SECONDS": "0"}
    )
    try:
        lookup = ctx.capacity(ceiling_requests(ctx), server=server)
    finally:
        ctx.stack.stop(server)
    ctx.ceiling_rps = lookup.achieved_rps
    return [
        row_from(
            "ceiling",
            "ceiling: JSON view + tenant middleware, one domain query (the ratios' base)",
            lookup,
            ceiling_rps=ctx.ceiling_rps,
            checks=[_all_200(lookup)],
            notes="issue 9's ceiling: CLINIC_DOMAIN_CACHE_SECONDS=0, second granian, same flags",
        ),
        row_from(
            "ceiling_cached",
            "ceiling, host cache on (no query; the configuration every scenario runs)",
            cached,
            ceiling_rps=ctx.ceiling_rps,
            checks=[_all_200(cached)],
            notes="default config: host→clinic cached per process "
            f"({ctx.env.get('CLINIC_DOMAIN_CACHE_SECONDS', '5')} s)",
        ),
    ]


@scenario(
    "ceiling_nodb",
    title="No-database ceiling: the same view without the tenant middleware",
    order=11,
    needs_ceiling=True,
)
def ceiling_nodb(ctx: Context) -> list[Row]:
    server = ctx.start_web(
        "web-nodb",
        port=ctx.ports["extra"],
        settings_module="bench.settings_nodb",
        ready_path=CEILING_PATH,
    )
    try:
        result = ctx.capacity(ceiling_requests(ctx), server=server)
    finally:
        ctx.stack.stop(server)
    return [
        row_from(
            "ceiling_nodb",
            "ceiling without tenant middleware (no database)",
            result,
            ceiling_rps=ctx.ceiling_rps,
            checks=[_all_200(result)],
            notes="bench/settings_nodb.py, second granian, same flags",
        )
    ]


@scenario(
    "ceiling_end",
    title="The tenant ceiling again at the end of the run (drift within the run)",
    order=99,
    needs_ceiling=True,
)
def ceiling_end(ctx: Context) -> list[Row]:
    """The host-cached ceiling again (the main server): its `× cached ceiling` is the drift."""
    result = ctx.capacity(ceiling_requests(ctx))
    return [
        row_from(
            "ceiling_end",
            "ceiling with the host cache on, again at the end of the run (drift check)",
            result,
            ceiling_rps=ctx.ceiling_rps,
            checks=[_all_200(result)],
            notes="ratios keep using the first measurement",
        )
    ]

"""The ceilings every capacity figure is compared with, measured in the same run with the same
server flags: the cheapest request a clinic host can answer (a plain Django JSON view behind the
tenant middleware), the same view without the tenant middleware (no database at all), and the
tenant ceiling with the per-process host cache off (one domain query per request)."""

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
    title="Ceiling: plain JSON view behind the tenant middleware (host cache on, as configured)",
    order=10,
    smoke=True,
)
def ceiling(ctx: Context) -> list[Row]:
    result = ctx.capacity(ceiling_requests(ctx))
    ctx.ceiling_rps = result.achieved_rps
    return [
        row_from(
            "ceiling",
            "ceiling: JSON view + tenant middleware (the ratios' base)",
            result,
            ceiling_rps=ctx.ceiling_rps,
            checks=[_all_200(result)],
            notes="default config: host→clinic cached per process "
            f"({ctx.env.get('CLINIC_DOMAIN_CACHE_SECONDS', '5')} s)",
        )
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
    "ceiling_nocache",
    title="Tenant ceiling with the host cache off (one domain query per request)",
    order=12,
    needs_ceiling=True,
)
def ceiling_nocache(ctx: Context) -> list[Row]:
    server = ctx.start_web(
        "web-nocache", port=ctx.ports["extra"], env={"CLINIC_DOMAIN_CACHE_SECONDS": "0"}
    )
    try:
        result = ctx.capacity(ceiling_requests(ctx), server=server)
    finally:
        ctx.stack.stop(server)
    return [
        row_from(
            "ceiling_nocache",
            "ceiling, CLINIC_DOMAIN_CACHE_SECONDS=0 (1 query)",
            result,
            ceiling_rps=ctx.ceiling_rps,
            checks=[_all_200(result)],
            notes="second granian, same flags; not the ratios' base",
        )
    ]


@scenario(
    "ceiling_end",
    title="The tenant ceiling again at the end of the run (drift within the run)",
    order=99,
    needs_ceiling=True,
)
def ceiling_end(ctx: Context) -> list[Row]:
    result = ctx.capacity(ceiling_requests(ctx))
    return [
        row_from(
            "ceiling_end",
            "ceiling again, end of run (drift check)",
            result,
            ceiling_rps=ctx.ceiling_rps,
            checks=[_all_200(result)],
            notes="ratios keep using the first measurement",
        )
    ]

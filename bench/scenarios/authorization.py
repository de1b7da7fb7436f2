"""Scenario 5 (authorization issue): the unit ledger under contention, through the API as an
integrator (a JWT minted in-process).

(a) The peer's scenario: 50 req/s offered for 60 s, each `POST .../lines/<id>/reserve/
    {units: 1}` on ONE line sized to half the requests, so the first half is reserved (201)
    and the rest refused (409 `authorization-exhausted`): every request must be answered
    (no rate limiter in the way), p95 ≤ 10 ms, p99 ≤ 20 ms.
(b) Capacity at 50 connections reserving on one line (large enough that every request is a
    reservation: the contended path, one row updated by every request).
(c) A mixed run across 50 authorizations, 70% reserve / 20% release / 10% consume, each release
    and consume naming its own reservation (made beforehand through the ledger's own rules:
    rows plus counters in one transaction): latency at 50 req/s and capacity.

Each run gets fresh authorizations (numbered `BENCH-RUN-...`, for seeded patients), so its
figures never depend on what earlier runs drew. Afterwards: no line overdrawn (the SQL of
issue 5), every line's counters equal its ledger, the contended line holds exactly the 201s,
and zero 5xx."""

import time
from datetime import timedelta

from bench.bench_clinic import bearer, in_bench, ledger_consistent
from bench.harness import Check, Context, Row, Target, row_from, scenario
from bench.load import Request
from bench.seed import AUTH_NUMBER_PREFIX, INTEGRATOR_EMAIL, THERAPY_CODE

PEER_RATE = 50
PEER_TARGET = Target(p95_ms=10, p99_ms=20)
MIXED_RATE = 50
MIXED_AUTHORIZATIONS = 50
# wrk cycles through its list: more distinct release/consume requests than 30 s can send.
MIXED_CAPACITY_REQUESTS = 20_000
ANSWERED = (200, 201, 409)


def _fresh_lines(count: int, units: int, run: str) -> list[tuple[int, int]]:
    """`count` new active authorizations with one 97153 line of `units` each, for seeded
    patients' coverages: [(authorization id, line id)]."""
    from django.db import transaction
    from django.utils import timezone

    from authorizations.models import Authorization, AuthorizationLine
    from practice.models import Coverage, ServiceCode

    today = timezone.localdate()
    with in_bench(), transaction.atomic():
        code = ServiceCode.objects.get(code=THERAPY_CODE)
        coverages = list(
            Coverage.objects.filter(authorizations__number__startswith=AUTH_NUMBER_PREFIX)
            .order_by("pk")
            .values_list("pk", "patient_id")[:count]
        )
        made = []
        for n, (coverage, patient) in enumerate(coverages):
            authorization = Authorization.objects.create(
                patient_id=patient,
                coverage_id=coverage,
                number=f"BENCH-RUN-{run}-{n}",
                start_date=today - timedelta(days=30),
                end_date=today + timedelta(days=180),
            )
            line = AuthorizationLine.objects.create(
                authorization=authorization, units_authorized=units
            )
            line.service_codes.set([code])
            made.append((authorization.pk, line.pk))
    return made


def _reservations(lines: list[tuple[int, int]], count: int) -> list[tuple[int, int, int]]:
    """`count` reserved units spread over `lines`, written as the ledger writes them: the rows
    and the counters in one transaction. [(authorization, line, reservation)]."""
    from django.db import transaction
    from django.db.models import F
    from django.utils import timezone

    from authorizations.models import AuthorizationLine, UnitReservation

    day = timezone.localdate() + timedelta(days=7)
    with in_bench(), transaction.atomic():
        rows = UnitReservation.objects.bulk_create(
            [
                UnitReservation(
                    line_id=lines[i % len(lines)][1],
                    units=1,
                    service_date=day,
                    reference=f"bench mixed {i}",
                )  # fmt: skip
                for i in range(count)
            ],
            batch_size=5000,
        )
        per_line: dict[int, int] = {}
        for row in rows:
            per_line[row.line_id] = per_line.get(row.line_id, 0) + 1
        for line, n in per_line.items():
            AuthorizationLine.objects.filter(pk=line).update(
                units_scheduled=F("units_scheduled") + n
            )
    by_line = {line: auth for auth, line in lines}
    return [(by_line[row.line_id], row.line_id, row.pk) for row in rows]


def _path(authorization: int, line: int, action: str) -> str:
    return f"/api/v1/authorizations/{authorization}/lines/{line}/{action}/"


def _reserve(authorization: int, line: int, headers: dict, service_date: str) -> Request:
    return Request(
        _path(authorization, line, "reserve"),
        method="POST",
        headers=headers,
        body={"units": 1, "service_date": service_date, "reference": "bench"},
    )


def _line_counters(line: int) -> tuple[int, int, int]:
    """A line's units, its scheduled counter and its reserved ledger rows, in one statement
    (one snapshot: reservations still committing after wrk's deadline land in both or
    neither)."""
    from django.db.models import Count, OuterRef, Subquery
    from django.db.models.functions import Coalesce

    from authorizations.models import AuthorizationLine, UnitReservation

    reserved = (
        UnitReservation.objects.filter(line=OuterRef("pk"), state="reserved")
        .order_by()
        .values("line")
        .annotate(n=Count("*"))
        .values("n")
    )
    with in_bench():
        return (
            AuthorizationLine.objects.filter(pk=line)
            .annotate(ledger_rows=Coalesce(Subquery(reserved), 0))
            .values_list("units_authorized", "units_scheduled", "ledger_rows")
            .get()
        )


def mixed_requests(
    lines: list[tuple[int, int]], n: int, headers: dict, service_date: str
) -> list[Request]:
    """Request i: reserve when i % 10 < 7, release when < 9, consume otherwise; each release
    and consume names a reservation of its own."""
    actions = ["reserve"] * 7 + ["release"] * 2 + ["consume"]
    own = iter(_reservations(lines, sum(1 for i in range(n) if actions[i % 10] != "reserve")))
    requests = []
    for i in range(n):
        action = actions[i % 10]
        if action == "reserve":
            authorization, line = lines[i % len(lines)]
            requests.append(_reserve(authorization, line, headers, service_date))
        else:
            authorization, line, reservation = next(own)
            requests.append(
                Request(
                    _path(authorization, line, action),
                    method="POST",
                    headers=headers,
                    body={"reservation": reservation},
                )
            )
    return requests


@scenario(
    "authorization",
    title="Scenario 5: authorization units under contention (one line) and a 70/20/10 mix",
    order=40,
    needs_ceiling=True,
    smoke=True,
)
def authorization(ctx: Context) -> list[Row]:
    from django.utils import timezone

    run = str(int(time.time()))
    service_date = (timezone.localdate() + timedelta(days=7)).isoformat()
    rows = []

    # (a) the peer's scenario: one line, half the requests fit.
    headers = bearer(ctx, INTEGRATOR_EMAIL)
    total = int(ctx.rate(PEER_RATE) * ctx.durations.latency_s)
    [(auth_a, line_a)] = _fresh_lines(1, max(1, total // 2), f"{run}-peer")
    request = _reserve(auth_a, line_a, headers, service_date)
    peer = ctx.latency(lambda i: request, rate=PEER_RATE, ok_statuses=ANSWERED)
    authorized, scheduled, ledger = _line_counters(line_a)
    created = int(peer.statuses.get("201", 0))
    answered = sum(peer.statuses.values())
    rows.append(
        row_from(
            "authorization",
            "authorization (a): reserve on one line, peer scenario",
            peer,
            target=PEER_TARGET,
            checks=[
                Check(
                    "every request answered",
                    answered == peer.scheduled,
                    f"{answered} of {peer.scheduled} answered",
                ),  # fmt: skip
                Check(
                    "the line holds exactly the 201s",
                    scheduled == ledger == created and scheduled <= authorized,
                    f"{created} answers 201, line {scheduled}/{authorized} units, "
                    f"{ledger} ledger rows",
                ),
            ],
            notes=f"{peer.statuses.get('201', 0)} reserved (201), {peer.statuses.get('409', 0)} "
            f"refused (409 exhausted) on a {authorized}-unit line",
        )
    )

    # (b) capacity on one line: every request a reservation.
    headers = bearer(ctx, INTEGRATOR_EMAIL)
    [(auth_b, line_b)] = _fresh_lines(1, 1_000_000, f"{run}-capacity")
    cap = ctx.capacity([_reserve(auth_b, line_b, headers, service_date)], ok_statuses=ANSWERED)
    authorized, scheduled, ledger = _line_counters(line_b)
    rows.append(
        row_from(
            "authorization",
            "authorization (b): reserve on one line, capacity",
            cap,
            ceiling_rps=ctx.ceiling_rps,
            checks=[
                Check(
                    "line counters = its ledger",
                    scheduled == ledger,
                    f"line {scheduled} units, {ledger} ledger rows (warm-up included)",
                ),
            ],  # fmt: skip
            notes=f"{cap.statuses.get('201', 0)} reserved in the measured 50-connection run",
        )
    )

    # (c) 70% reserve / 20% release / 10% consume across 50 authorizations.
    headers = bearer(ctx, INTEGRATOR_EMAIL)
    lines = _fresh_lines(MIXED_AUTHORIZATIONS, 1_000_000, f"{run}-mixed")
    total = int(ctx.rate(MIXED_RATE) * ctx.durations.latency_s) + 1
    requests = mixed_requests(lines, total, headers, service_date)
    mixed = ctx.latency(lambda i: requests[i], rate=MIXED_RATE, ok_statuses=ANSWERED)
    rows.append(
        row_from(
            "authorization",
            "authorization (c): 70/20/10 reserve/release/consume, 50 auths",
            mixed,
            notes="every release/consume names its own reservation",
        )
    )
    if not ctx.smoke:
        headers = bearer(ctx, INTEGRATOR_EMAIL)
        requests = mixed_requests(lines, MIXED_CAPACITY_REQUESTS, headers, service_date)
        cap = ctx.capacity(requests, ok_statuses=ANSWERED, warmup_requests=[])
        rows.append(
            row_from(
                "authorization",
                "authorization (c): 70/20/10 mix, capacity",
                cap,
                ceiling_rps=ctx.ceiling_rps,
                notes="no warm-up (each release/consume is used once)"
                + (
                    f"; wrk sent more than the {len(requests)} distinct requests"
                    if cap.requests > len(requests)
                    else ""
                ),
            )
        )
    rows[-1].checks += ledger_consistent()
    return rows

"""Scenario 3 (scheduling issue): direct booking of distinct free slots.

`POST /api/v1/appointments/ {patient, practitioner, appointment_type, start, notes}` as the
front desk (a JWT minted in-process), each request a different free slot of the 30-minute visit
on the 30-minute grid of working hours 50-110 days ahead (`bench_clinic.FreeSlots`: never the
same slot twice, in this run or a later one). Capacity at 50 connections, then latency at
100 req/s offered (target p99 ≤ 25 ms, zero 5xx). Every request's `notes` carry a tag of its
run, so the database can be asked afterwards what each run wrote: every 201 must be a booked
appointment there (the latency run checks each returned id; the capacity run, whose answers wrk
only counts, checks that the number of 201s equals the number of its tagged rows), and no two
active appointments may overlap."""

import json
import time
from datetime import datetime

from bench.bench_clinic import FreeSlots, bearer, bench_ids, in_bench, no_overlaps
from bench.harness import Check, Context, Row, Target, row_from, scenario
from bench.load import Request
from bench.seed import FRONT_DESK_EMAIL

LATENCY_RATE = 100
LATENCY_TARGET = Target(p99_ms=25)
# wrk cycles through its list: give it more distinct slots than 30 s can book.
CAPACITY_SLOTS = 15_000
WARMUP_SLOTS = 600


def _patients() -> list[int]:
    from practice.models import Patient

    with in_bench():
        return list(
            Patient.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)
        )


def booking_requests(
    slots: list[tuple[int, datetime]], *, type_id: int, tag: str, headers: dict[str, str]
) -> list[Request]:
    patients = _patients()
    return [
        Request(
            "/api/v1/appointments/",
            method="POST",
            headers=headers,
            body={
                "patient": patients[i % len(patients)],
                "practitioner": practitioner,
                "appointment_type": type_id,
                "start": start.isoformat(),
                "notes": tag,
            },
        )
        for i, (practitioner, start) in enumerate(slots)
    ]


def tagged(tag: str) -> list[tuple[int, int, datetime, str]]:
    from scheduling.models import Appointment

    with in_bench():
        return list(
            Appointment.objects.filter(notes=tag).values_list(
                "pk", "practitioner_id", "start", "status"
            )
        )


def capacity_written(tag: str, created: int, connections: int) -> Check:
    """Every row of the run is booked, and there is one per 201 that wrk counted, plus at most
    one per connection: wrk stops counting at the deadline while the requests then in flight
    (at most one per connection) still complete on the server. The latency run, which waits
    for every answer, checks the ids one by one."""
    time.sleep(1)  # let the requests in flight at the deadline finish
    rows = tagged(tag)
    booked = sum(1 for row in rows if row[3] == "booked")
    in_flight = len(rows) - created
    return Check(
        "every 201 is a booked appointment in the database",
        booked == len(rows) and 0 <= in_flight <= connections,
        f"{created} answers 201, {booked} booked rows tagged with this run ({len(rows)} in all;"
        f" {in_flight} completed after wrk's deadline, at most {connections} can)",
    )


def latency_written(tag: str, answers: dict[int, tuple[int, str]]) -> Check:
    """Each 201's id is a booked row with the practitioner and start that were asked for."""
    rows = {pk: (practitioner, start, status) for pk, practitioner, start, status in tagged(tag)}
    wrong = []
    for pk, (practitioner, start) in answers.items():
        row = rows.get(pk)
        if row is None:
            wrong.append(f"{pk} missing")
        elif (row[0], row[1], row[2]) != (practitioner, datetime.fromisoformat(start), "booked"):
            wrong.append(f"{pk} is {row}")
    extra = len(rows) - len(answers)
    if extra:
        wrong.append(f"{extra} tagged rows without a 201")
    return Check(
        "every 201 is a booked appointment in the database",
        not wrong,
        "; ".join(wrong[:5]) or f"{len(answers)} ids checked",
    )


@scenario(
    "booking",
    title="Scenario 3: direct booking of distinct free slots (front desk, JWT)",
    order=30,
    needs_ceiling=True,
    smoke=True,
)
def booking(ctx: Context) -> list[Row]:
    ids = bench_ids()
    slots = FreeSlots()
    run = f"bench booking {int(time.time())}"
    rows = []
    if not ctx.smoke:
        headers = bearer(ctx, FRONT_DESK_EMAIL)
        tag = f"{run} capacity"
        requests = booking_requests(
            slots.take(CAPACITY_SLOTS), type_id=ids.visit_type, tag=tag, headers=headers
        )
        warmup = booking_requests(
            slots.take(WARMUP_SLOTS), type_id=ids.visit_type, tag=f"{run} warm-up", headers=headers
        )
        cap = ctx.capacity(requests, ok_statuses=(201,), warmup_requests=warmup)
        created = int(cap.statuses.get("201", 0))
        notes = ""
        if cap.requests >= len(requests):
            notes = f"wrk sent more than the {len(requests)} distinct slots: repeats answer 409"
        rows.append(
            row_from(
                "booking",
                "booking: capacity",
                cap,
                ceiling_rps=ctx.ceiling_rps,
                checks=[capacity_written(tag, created, cap.connections)],
                notes=notes,
            )
        )

    headers = bearer(ctx, FRONT_DESK_EMAIL)
    tag = f"{run} latency"
    total = int(ctx.rate(LATENCY_RATE) * ctx.durations.latency_s) + 1
    requests = booking_requests(slots.take(total), type_id=ids.visit_type, tag=tag, headers=headers)
    answers: dict[int, tuple[int, str]] = {}

    def on_response(i: int, request: Request, status: int, body: bytes) -> None:
        if status == 201:
            data = json.loads(body)
            answers[data["id"]] = (data["practitioner"]["id"], request.body["start"])

    lat = ctx.latency(
        lambda i: requests[i], rate=LATENCY_RATE, ok_statuses=(201,), on_response=on_response
    )
    rows.append(
        row_from(
            "booking",
            "booking: latency",
            lat,
            target=LATENCY_TARGET,
            checks=[latency_written(tag, answers), no_overlaps()],
            notes="30-min visit, distinct free slots 50-110 days ahead",
        )
    )
    return rows

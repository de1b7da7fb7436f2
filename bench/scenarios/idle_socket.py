"""Idle websockets (issue 15 a): sockets that hear nothing for 10 minutes, then the next event.

Only on request (`make bench BENCH_ARGS="--only idle_socket"`; never in the default run or the
smoke run: it is mostly waiting). The test suite checks the same with 35 s of silence
(realtime/tests/test_idle_sockets.py); this holds the sockets for the 10 minutes the issue
names (60 s with `--quick`).

With the Celery worker stopped, so that its jobs stay `queued`, the harness submits two
smart-booking jobs and opens on the bench clinic's host one socket of each kind of client:

- `/ws/schedule/` signed in by the session cookie (from the admin's login form), Origin the
  clinic's pages: the board in a browser;
- `/ws/schedule/?token=`, no Origin: an integrator's server;
- `/ws/jobs/<id>/?token=` and `/ws/jobs/<id>/` with `Sec-WebSocket-Protocol: bearer, <token>`,
  no Origin;
- `/ws/ping/`, anonymous, Origin the clinic's pages.

It reads each one's first frame (ready, the job's state, pong), then holds them all idle;
anything a socket receives or a close during the wait is recorded. Then the next events: a
booking through the API (the schedule sockets), a message to the ping group through the
channel layer, and the worker started again (the job sockets: running, then a final state).
One row per socket says whether it was still open after the wait and which event it received
how long after it was sent. Broken (exit status 1): a socket closed during the wait, or no
next event within `NEXT_EVENT_TIMEOUT_S`.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from bench.bench_clinic import FreeSlots, access_token, bench_ids
from bench.harness import BENCH_HOST_SLUG, Check, Context, Row, scenario
from bench.load import Request
from bench.scenarios.booking import booking_requests
from bench.scenarios.smart import job_bodies, restart_worker, worker_concurrency
from bench.seed import BENCH_PASSWORD, FRONT_DESK_EMAIL

IDLE_S = {"full": 600.0, "quick": 60.0, "smoke": 35.0}
NEXT_EVENT_TIMEOUT_S = 90.0  # the worker's restart is part of it for the job sockets
FINAL = ("completed", "failed", "cancelled")
BOOKED = "the booking's POST was sent"
WORKER = "the worker was started again"


@dataclass
class Held:
    """One socket held idle, and what became of it."""

    name: str
    path: str
    origin: str | None = None
    cookie: str | None = None
    subprotocols: list[str] | None = None
    sent_by: str = ""  # what sends its next event
    first: dict | None = None
    during_wait: list[dict] = field(default_factory=list)
    closed: str | None = None  # "<code> after <s> s" when the server closed it
    next_event: dict | None = None
    delivered_ms: float | None = None
    final_status: str | None = None
    error: str | None = None


def _log(message: str) -> None:
    import sys

    print(f"bench: idle_socket: {message}", file=sys.stderr, flush=True)


def _session_cookie(ctx: Context) -> str:
    """The session cookie a browser gets from the clinic's admin login form."""
    import httpx

    with httpx.Client(
        base_url=ctx.web.base_url, headers={"Host": ctx.host()}, trust_env=False, timeout=30
    ) as client:
        page = client.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        response = client.post(
            "/admin/login/",
            data={
                "username": FRONT_DESK_EMAIL,
                "password": BENCH_PASSWORD,
                "csrfmiddlewaretoken": token.group(1) if token else "",
                "next": "/admin/",
            },
        )
        cookie = client.cookies.get("sessionid")
    if not cookie:
        raise RuntimeError(f"the admin login gave no session (answer {response.status_code})")
    return cookie


def _api(ctx: Context, method: str, path: str, body: dict | None = None) -> dict:
    import httpx

    token = access_token(ctx, FRONT_DESK_EMAIL)  # fresh: the wait outlasts a 15-minute token
    with httpx.Client(
        base_url=ctx.web.base_url,
        headers={"Host": ctx.host(), "Authorization": f"Bearer {token}"},
        trust_env=False,
        timeout=60,
    ) as client:
        response = client.request(method, path, json=body)
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
    return response.json()


async def _wait_idle(held: Held, ws, idle_s: float) -> None:
    from websockets.exceptions import ConnectionClosed

    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + idle_s
    while (left := deadline - loop.time()) > 0:
        try:
            held.during_wait.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
        except TimeoutError:
            return
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else "no close frame"
            held.closed = f"{code} after {loop.time() - started:.0f} s"
            return


async def _next_event(held: Held, ws, sent: float) -> None:
    """The first frame after the wait; for a job socket, then every frame to the final one."""
    from websockets.exceptions import ConnectionClosed

    if held.closed:
        return
    try:
        async with asyncio.timeout(NEXT_EVENT_TIMEOUT_S):
            frame = json.loads(await ws.recv())
            held.delivered_ms = (time.monotonic() - sent) * 1000
            held.next_event = frame
            while "status" in frame and frame["status"] not in FINAL:
                frame = json.loads(await ws.recv())
            held.final_status = frame.get("status")
    except TimeoutError:
        held.error = f"nothing within {NEXT_EVENT_TIMEOUT_S:g} s"
    except ConnectionClosed as closed:
        if held.next_event is None:
            held.error = f"closed ({closed.rcvd.code if closed.rcvd else '?'}) before an event"


async def _hold(
    ctx: Context, sockets: list[Held], idle_s: float, booking: Request, concurrency: int
) -> None:
    from channels_redis.core import RedisChannelLayer
    from django.conf import settings
    from websockets.asyncio.client import connect

    from realtime.groups import group_name

    async with AsyncExitStack() as stack:
        opened = []
        for held in sockets:
            headers = {"Cookie": f"sessionid={held.cookie}"} if held.cookie else None
            ws = await stack.enter_async_context(
                connect(
                    f"ws://{ctx.host()}:{ctx.ports['ws']}{held.path}",
                    host="127.0.0.1",
                    port=ctx.ports["ws"],
                    origin=held.origin,
                    additional_headers=headers,
                    subprotocols=held.subprotocols,
                    proxy=None,
                    open_timeout=30,
                )
            )
            held.first = json.loads(await asyncio.wait_for(ws.recv(), 30))
            opened.append((held, ws))
        _log(f"holding {len(opened)} sockets idle for {idle_s:g} s")
        await asyncio.gather(*(_wait_idle(held, ws, idle_s) for held, ws in opened))

        schedule = [(h, ws) for h, ws in opened if h.path.startswith("/ws/schedule/")]
        jobs = [(h, ws) for h, ws in opened if h.path.startswith("/ws/jobs/")]
        pings = [(h, ws) for h, ws in opened if h.path.startswith("/ws/ping/")]

        # A booking: what the board sockets hear next.
        sent = time.monotonic()
        listening = [asyncio.create_task(_next_event(h, ws, sent)) for h, ws in schedule]
        await asyncio.to_thread(_api, ctx, "POST", booking.path, booking.body)
        await asyncio.gather(*listening)

        # A message to the ping group, through the channel layer the servers use (their prefix).
        config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
        layer = RedisChannelLayer(hosts=config["hosts"], prefix=ctx.env["CHANNEL_LAYER_PREFIX"])
        sent = time.monotonic()
        listening = [asyncio.create_task(_next_event(h, ws, sent)) for h, ws in pings]
        await layer.group_send(
            group_name("ping", schema=BENCH_HOST_SLUG),
            {"type": "event.forward", "event": {"type": "idle-check"}},
        )
        await asyncio.gather(*listening)
        await layer.close_pools()  # (not flush(): that deletes every group of the prefix)

        # The worker again: the jobs run, and their sockets hear it.
        sent = time.monotonic()
        listening = [asyncio.create_task(_next_event(h, ws, sent)) for h, ws in jobs]
        await asyncio.to_thread(restart_worker, ctx, concurrency)
        await asyncio.gather(*listening)


def _row(held: Held, idle_s: float) -> Row:
    after_wait = held.closed is None
    heard = held.next_event is not None
    event = held.next_event or {}
    kind = event.get("type") or event.get("status") or "?"
    if held.final_status and held.final_status != kind:
        kind += f" … {held.final_status}"
    notes = (
        f"first frame {held.first.get('type') or held.first.get('status') if held.first else '—'}"
        + (f"; {len(held.during_wait)} frame(s) during the wait" if held.during_wait else "")
        + (f"; next event {kind} {held.delivered_ms:.0f} ms after {held.sent_by}" if heard else "")
    )
    return Row(
        scenario="idle_socket",
        label=f"idle_socket: {held.name}",
        offered=f"idle {idle_s:g} s",
        checks=[
            Check(
                f"open after {idle_s:g} s idle",
                after_wait,
                f"closed by the server: {held.closed}" if held.closed else "",
            ),
            Check("received the next event", heard, held.error or ""),
        ],
        notes=notes,
        data={
            "first": held.first,
            "during_wait": held.during_wait,
            "closed": held.closed,
            "next_event": held.next_event,
            "delivered_ms": held.delivered_ms,
            "final_status": held.final_status,
        },
    )


@scenario(
    "idle_socket",
    title="Issue 15: websockets held idle (10 minutes), then the next event",
    order=95,
    default=False,
)
def idle_socket(ctx: Context) -> list[Row]:
    idle_s = IDLE_S[ctx.mode]
    concurrency = worker_concurrency(ctx) or 2
    token = access_token(ctx, FRONT_DESK_EMAIL)
    own_pages = f"http://{ctx.host()}:{ctx.ports['web']}"
    worker = next(s for s in ctx.stack.services if s.name == "worker")
    ctx.stack.stop(worker)  # the jobs below wait in `queued` until it is back
    try:
        offset = int(time.time()) % 10_000
        job_ids = [
            _api(ctx, "POST", "/api/v1/smart-bookings/", body)["job_id"]
            for body in job_bodies(2, start=offset)
        ]
        sockets = [
            Held("/ws/schedule/, session cookie, the clinic's Origin", "/ws/schedule/",
                 origin=own_pages, cookie=_session_cookie(ctx), sent_by=BOOKED),
            Held("/ws/schedule/, ?token=, no Origin", f"/ws/schedule/?token={token}",
                 sent_by=BOOKED),
            Held("/ws/jobs/<id>/, ?token=, no Origin", f"/ws/jobs/{job_ids[0]}/?token={token}",
                 sent_by=WORKER),
            Held("/ws/jobs/<id>/, bearer subprotocol, no Origin", f"/ws/jobs/{job_ids[1]}/",
                 subprotocols=["bearer", token], sent_by=WORKER),
            Held("/ws/ping/, anonymous, the clinic's Origin", "/ws/ping/", origin=own_pages,
                 sent_by="the group_send"),
        ]  # fmt: skip
        [booking] = booking_requests(
            FreeSlots().take(1), type_id=bench_ids().visit_type, tag="bench idle_socket", headers={}
        )
        asyncio.run(_hold(ctx, sockets, idle_s, booking, concurrency))
    finally:
        if not any(s.name == "worker" for s in ctx.stack.services):
            restart_worker(ctx, concurrency)
    return [_row(held, idle_s) for held in sockets]

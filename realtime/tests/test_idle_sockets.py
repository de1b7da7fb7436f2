"""Idle websockets stay up (issue 15 a): a socket that hears nothing for longer than every
timeout on the way (redis-py's 5 s read timeout, channels-redis's 5 s BZPOPMIN, daphne's 20 s
ping) is still open afterwards and delivers the next event. Real daphne, a real Celery worker
and the real Redis channel layer; `bench/scenarios/idle_socket.py` holds sockets for 10 minutes.
"""

import time

from realtime.groups import group_name, publish

from .sockets import (
    access_token,
    api,
    frames_until_closed,
    next_frame,
    open_socket,
    practice,
    session_cookie,
)

IDLE_SECONDS = 35


def test_idle_sockets_stay_open_and_deliver_the_next_event(
    live_servers, live_worker, committed_acme, make_user
):
    acme = committed_acme
    world = practice(acme)
    integrator = access_token(acme, make_user(acme, "integrator"))
    cookie = session_cookie(acme, make_user(acme, "front_desk"))
    status, accepted = api(
        live_servers, "acme", "POST", "/api/v1/smart-bookings/",
        token=integrator, body=world.smart_request(),
    )  # fmt: skip
    assert status == 202, accepted  # no worker yet: the job waits in `queued`
    own_origin = live_servers.url("acme")
    job_path = f"/ws/jobs/{accepted['job_id']}/?token={integrator}"
    with (
        open_socket(
            live_servers, "acme", "/ws/schedule/", origin=own_origin, cookie=cookie
        ) as board,
        open_socket(live_servers, "acme", job_path, origin=own_origin) as job,
        open_socket(live_servers, "acme", "/ws/ping/", origin=own_origin) as ping,
    ):
        assert next_frame(board) == {"type": "ready", "scope": "clinic"}
        assert next_frame(job)["status"] == "queued"
        assert next_frame(ping)["type"] == "pong"

        time.sleep(IDLE_SECONDS)  # nothing happens in the clinic meanwhile

        status, booked = api(
            live_servers, "acme", "POST", "/api/v1/appointments/",
            token=integrator, body=world.booking(hour=16),
            headers={"X-Request-ID": "idle-sockets-booking-1"},
        )  # fmt: skip
        assert status == 201, booked
        heard = next_frame(board)
        assert (heard["type"], heard["appointment"]["id"]) == ("appointment.booked", booked["id"])
        assert heard["request_id"] == "idle-sockets-booking-1"  # traced to its request

        publish(group_name("ping", schema="acme"), {"type": "news", "text": "still there?"})
        assert next_frame(ping) == {"type": "news", "text": "still there?"}

        live_worker()
        frames, code = frames_until_closed(job)
        assert [frame["status"] for frame in frames][-1] == "completed", frames
        assert code == 1000  # closed by the consumer after the final state, not 1011

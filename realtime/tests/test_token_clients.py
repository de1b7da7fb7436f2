"""An integrator's server-side client (issue 15 b): it signs in with a JWT, sends no Origin, and
watches its smart-booking job over the websocket until it is booked. Real granian, daphne and
Celery worker."""

from .sockets import access_token, api, frames_until_closed, next_frame, open_socket, practice


def test_a_token_client_without_origin_watches_its_job_to_completed(
    live_servers, live_worker, committed_acme, make_user
):
    acme = committed_acme
    world = practice(acme)
    token = access_token(acme, make_user(acme, "integrator"))
    status, accepted = api(
        live_servers, "acme", "POST", "/api/v1/smart-bookings/",
        token=token, body=world.smart_request(),
    )  # fmt: skip
    assert status == 202, accepted
    path = f"/ws/jobs/{accepted['job_id']}/"
    with (
        open_socket(live_servers, "acme", f"{path}?token={token}") as by_query,
        open_socket(live_servers, "acme", path, subprotocols=["bearer", token]) as by_subprotocol,
    ):
        assert by_subprotocol.subprotocol == "bearer"  # echoed, as browsers require
        # Both opened before any worker runs: the first frame is the job's current state.
        assert next_frame(by_query)["status"] == next_frame(by_subprotocol)["status"] == "queued"
        live_worker()
        watched = [frames_until_closed(socket) for socket in (by_query, by_subprotocol)]

    status, job = api(live_servers, "acme", "GET", f"/api/v1/smart-bookings/{accepted['job_id']}/",
                      token=token)  # fmt: skip
    assert status == 200 and job["status"] == "completed", job
    for frames, code in watched:
        assert [frame["status"] for frame in frames][-1] == "completed", frames
        assert frames[-1] == job  # the same JSON as the API
        assert code == 1000

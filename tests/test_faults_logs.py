"""JSON log lines with the request id (issue 21, part 2): a booking's line names its request id,
clinic, user, route, status and duration; a smart-booking request's id (`X-Request-ID`, echoed)
is on its task's line in the worker's log. Real granian and Celery worker (tests/faults.py)."""

import json
import time
import uuid

import pytest

from realtime.tests.sockets import access_token, practice
from tests.faults import fault_stack

pytestmark = pytest.mark.live


def _lines(path) -> list[dict]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def test_a_booking_logs_one_json_line_and_its_task_names_the_same_request_id(
    committed_acme, make_user
):
    acme = committed_acme
    world = practice(acme)
    user = make_user(acme, "integrator")
    token = access_token(acme, user)
    stack = fault_stack()
    try:
        booking_id = f"booking-{uuid.uuid4().hex}"
        status, headers, body, _ = stack.call(
            "acme", "POST", "/api/v1/appointments/", token=token, body=world.booking(10),
            extra_headers={"X-Request-ID": booking_id},
        )  # fmt: skip
        assert status == 201, body
        assert headers["X-Request-ID"] == booking_id

        smart_id = f"smart-{uuid.uuid4().hex}"
        status, headers, job, _ = stack.call(
            "acme", "POST", "/api/v1/smart-bookings/", token=token, body=world.smart_request(),
            extra_headers={"X-Request-ID": smart_id},
        )  # fmt: skip
        assert status == 202, job
        assert headers["X-Request-ID"] == smart_id
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            _, _, job, _ = stack.call(
                "acme", "GET", f"/api/v1/smart-bookings/{job['job_id']}/", token=token
            )
            if job["status"] in ("completed", "failed"):
                break
            time.sleep(0.3)
        assert job["status"] == "completed", job
        time.sleep(1)  # the worker writes its task line after the task returns

        requests = [line for line in _lines(stack.workdir / "http.log")
                    if line.get("logger") == "clinic.requests"]  # fmt: skip
        booking = [line for line in requests if line.get("request_id") == booking_id]
        assert len(booking) == 1, requests
        line = booking[0]
        assert line["clinic"] == "acme"
        assert line["user"] == user.pk
        assert line["route"].endswith("appointment-list"), line
        assert line["method"] == "POST" and line["status"] == 201
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0

        tasks = [line for line in _lines(stack.workdir / "worker.log")
                 if line.get("logger") == "clinic.tasks"]  # fmt: skip
        smart = [line for line in tasks if line.get("request_id") == smart_id]
        assert any("smart" in line["task"] for line in smart), (smart_id, tasks)
        assert all(line["clinic"] == "acme" for line in smart), smart
    finally:
        stack.stop()

"""A user signed out everywhere (a new password, "sign out everywhere" from the API or the admin's
user tools) loses their open websockets at once, closed with 4401, whichever credential opened
them; every other user's socket stays open, the same user id in another clinic's included.
Real daphne and granian, the real Redis channel layer (realtime/revocation.py)."""

import pytest
from django.db import transaction

from accounts.services import users_sign_out_everywhere
from clinic.permissions import FRONT_DESK, PATIENT
from realtime.groups import group_name, publish
from realtime.revocation import CLOSE_SIGNED_OUT
from realtime.tests.sockets import (
    access_token,
    api,
    frames_until_closed,
    next_frame,
    open_socket,
    practice,
    session_cookie,
)
from scheduling.models import SmartBookingJob
from tests.fixtures import in_clinic, session_client

PASSWORD = "a-long-test-password"  # make_user's
NEW_PASSWORD = "a-new-and-longer-test-password"
READY = {"type": "ready", "scope": "clinic"}


def _board(live_servers, slug: str, *, cookie: str | None = None, token: str | None = None):
    """The schedule board's socket, by session cookie (from the clinic's own pages, as a
    browser) or by JWT (the `bearer` subprotocol, as an integrator)."""
    if token:
        return open_socket(live_servers, slug, "/ws/schedule/", subprotocols=["bearer", token])
    return open_socket(
        live_servers, slug, "/ws/schedule/", origin=live_servers.url(slug), cookie=cookie
    )


def _closed_signed_out(socket) -> None:
    assert frames_until_closed(socket, timeout=15) == ([], CLOSE_SIGNED_OUT)


def _still_open(slug: str, *boards) -> None:
    """Each board still hears its clinic: a probe sent to the clinic's board group arrives
    (a close sent before it would have arrived first)."""
    probe = {"type": "probe", "clinic": slug}
    publish(group_name("schedule", schema=slug), probe)
    for board in boards:
        assert next_frame(board) == probe


def test_a_password_change_closes_the_user_s_open_sockets_and_no_one_else_s(
    live_servers, committed_acme, committed_globex, make_user
):
    acme, globex = committed_acme, committed_globex
    desk = make_user(acme, FRONT_DESK)
    colleague = make_user(acme, FRONT_DESK)
    twin = make_user(globex, FRONT_DESK)
    assert twin.pk == desk.pk  # user ids are per clinic: the groups must be too
    desk_session = session_client(acme, desk)
    with (
        _board(live_servers, "acme", cookie=session_cookie(acme, desk)) as by_cookie,
        _board(live_servers, "acme", token=access_token(acme, desk)) as by_token,
        _board(live_servers, "acme", cookie=session_cookie(acme, colleague)) as colleague_board,
        _board(live_servers, "globex", token=access_token(globex, twin)) as twin_board,
    ):
        for board in (by_cookie, by_token, colleague_board, twin_board):
            assert next_frame(board) == READY
        changed = desk_session.post(
            "/admin/password_change/",
            {
                "old_password": PASSWORD,
                "new_password1": NEW_PASSWORD,
                "new_password2": NEW_PASSWORD,
            },
        )
        assert changed.status_code == 302
        _closed_signed_out(by_cookie)
        _closed_signed_out(by_token)
        _still_open("acme", colleague_board)
        _still_open("globex", twin_board)


def test_sign_out_everywhere_closes_the_job_socket_and_the_board(
    live_servers, committed_acme, make_user
):
    acme = committed_acme
    patient_user = make_user(acme, PATIENT)
    desk, colleague = make_user(acme, FRONT_DESK), make_user(acme, FRONT_DESK)
    world = practice(acme, patient_user=patient_user)
    with in_clinic(acme):
        job = SmartBookingJob.objects.create(patient_id=world.patient_id, request={"tz": "UTC"})
    patient_token = access_token(acme, patient_user)
    with (
        open_socket(live_servers, "acme", f"/ws/jobs/{job.pk}/?token={patient_token}") as watch,
        _board(live_servers, "acme", cookie=session_cookie(acme, desk)) as desk_board,
        _board(live_servers, "acme", token=access_token(acme, colleague)) as colleague_board,
    ):
        assert next_frame(watch)["status"] == "queued"  # open, waiting for the job
        assert next_frame(desk_board) == next_frame(colleague_board) == READY

        # The patient signs out everywhere through the API (the live HTTP server's process).
        status, _ = api(
            live_servers, "acme", "POST", "/api/v1/auth/sign-out-everywhere/", token=patient_token
        )
        assert status == 204
        _closed_signed_out(watch)
        _still_open("acme", desk_board, colleague_board)

        # The desk does from the admin's user tools.
        signed_out = session_client(acme, desk).post("/admin/account/sign-out-everywhere/")
        assert signed_out.status_code == 302
        _closed_signed_out(desk_board)
        _still_open("acme", colleague_board)


class _RolledBack(Exception):
    pass


def test_a_revocation_that_rolls_back_closes_nothing(live_servers, committed_acme, make_user):
    acme = committed_acme
    desk = make_user(acme, FRONT_DESK)
    with _board(live_servers, "acme", cookie=session_cookie(acme, desk)) as board:
        assert next_frame(board) == READY
        with pytest.raises(_RolledBack), in_clinic(acme), transaction.atomic():
            users_sign_out_everywhere(user_ids=[desk.pk])
            raise _RolledBack
        _still_open("acme", board)

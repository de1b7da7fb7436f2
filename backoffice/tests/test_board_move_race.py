"""Two boards move two visits into the same slot at once, against the real database (threads,
each with its own connection, committing): one move wins, the other is the API's 409 with
alternatives, and its visit stays where it was."""

import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections, connection

from authorizations.selectors import ledger_mismatches
from scheduling import selectors
from scheduling.models import Appointment
from scheduling.tests.factories import build_world
from tests.fixtures import in_clinic, session_client


def test_two_boards_moving_visits_into_one_slot_one_wins_the_other_gets_409(
    committed_acme, make_user
):
    desks = [make_user(committed_acme, "front_desk") for _ in range(2)]
    with in_clinic(committed_acme):
        world = build_world()
    boards = [session_client(committed_acme, desk) for desk in desks]
    # Alpha's 10:00 and Beta's 11:00 both dragged to Gamma's 14:00.
    moves = [
        (boards[0], world.alpha_visit),
        (boards[1], world.beta_visit),
    ]
    target = {"start": world.at(14).isoformat(), "practitioner": world.gamma.pk}
    barrier = threading.Barrier(len(moves))

    def move(job):
        client, appointment = job
        try:
            barrier.wait(timeout=30)
            url = f"/admin/scheduling/board/appointments/{appointment.pk}/move/"
            response = client.post(url, target)
            return response.status_code, response.json()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(moves)) as pool:
        outcomes = list(pool.map(move, moves))
    close_old_connections()
    statuses = sorted(status for status, _ in outcomes)
    assert statuses == [200, 409], outcomes
    refused = next(body for status, body in outcomes if status == 409)
    assert refused["code"] == "slot-unavailable" and refused["suggested_alternatives"]
    with in_clinic(committed_acme):
        at_gamma = Appointment.objects.filter(practitioner=world.gamma, start=world.at(14))
        assert at_gamma.count() == 1
        winner = at_gamma.get()
        loser = next(a for _, a in moves if a.pk != winner.pk)
        loser_now = Appointment.objects.get(pk=loser.pk)
        assert (loser_now.practitioner_id, loser_now.start) == (loser.practitioner_id, loser.start)
        assert selectors.appointments_overlapping() == []
        assert ledger_mismatches() == []

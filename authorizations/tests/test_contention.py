"""Concurrency proofs against the real database (threads, own connections, real commits)."""

import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections, connection
from django.utils import timezone
from django_tenants.utils import schema_context

from authorizations import selectors, services
from authorizations.errors import AuthorizationExhaustedError
from authorizations.models import AuthorizationLine
from authorizations.tests import factories as af
from scheduling import services as booking
from scheduling.selectors import appointments_overlapping
from scheduling.tests import factories as f
from tests.fixtures import ClinicClient, in_clinic

WORKERS = 50


def _in_threads(clinic, count: int, action) -> list[str]:
    parties = min(WORKERS, count)
    barrier = threading.Barrier(parties)

    def run(i: int) -> str:
        try:
            with schema_context(clinic.schema_name):
                if i < parties:
                    barrier.wait(timeout=30)
                return action(i)
        except AuthorizationExhaustedError:
            return "409"
        except Exception as error:  # noqa: BLE001
            return f"error: {type(error).__name__}: {error}"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        outcomes = list(pool.map(run, range(count)))
    close_old_connections()
    return outcomes


def _overdrawn_rows() -> list:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM authorizations_authorizationline "
            "WHERE units_scheduled + units_used > units_authorized"
        )
        return cursor.fetchall()


def test_200_concurrent_reservations_of_10_units_on_a_50_unit_line(committed_acme):
    with in_clinic(committed_acme):
        _, line = af.authorization(f.patient(), f.service_code(), units=50)
    today = timezone.localdate()
    outcomes = _in_threads(committed_acme, 200, lambda i: _reserve_on(line.pk, today))
    assert outcomes.count("ok") == 5, outcomes
    assert outcomes.count("409") == 195, [o for o in outcomes if o not in ("ok", "409")]
    with in_clinic(committed_acme):
        assert _overdrawn_rows() == []
        assert selectors.ledger_mismatches() == []
        line.refresh_from_db()
        assert (line.units_scheduled, line.units_used) == (50, 0)


def _reserve_on(line_id: int, day) -> str:
    line = AuthorizationLine.objects.select_related("authorization").get(pk=line_id)
    services.units_reserve(line=line, units=10, service_date=day)
    return "ok"


def test_200_concurrent_http_reservations_answer_201_or_409_and_never_overdraw(
    committed_acme, make_user
):
    integrator = make_user(committed_acme, "integrator")
    with in_clinic(committed_acme):
        auth, line = af.authorization(f.patient(), f.service_code(), units=50)
    url = f"/api/v1/authorizations/{auth.pk}/lines/{line.pk}/reserve/"

    def post(i: int) -> str:
        client = ClinicClient(committed_acme).authenticate(integrator)
        response = client.post(url, {"units": 10}, "application/json")
        return {201: "ok", 409: "409"}.get(response.status_code, f"error: {response.status_code}")

    outcomes = _in_threads(committed_acme, 200, post)
    assert outcomes.count("ok") == 5 and outcomes.count("409") == 195, outcomes
    with in_clinic(committed_acme):
        assert _overdrawn_rows() == [] and selectors.ledger_mismatches() == []


def test_concurrent_bookings_of_different_slots_drawing_on_one_line(committed_acme):
    with in_clinic(committed_acme):
        code = f.service_code("97153", 15)
        patient = f.patient()
        _, line = af.authorization(patient, code, units=20)  # five 1-hour visits (4 units)
        practitioners = [f.practitioner() for _ in range(10)]
        t = f.appointment_type(*practitioners, minutes=60, code=code)
        day = f.next_weekday(2)
        jobs = [(p, f.local(day, 9 + hour)) for p in practitioners for hour in range(4)]

    def book(i: int) -> str:
        practitioner, start = jobs[i]
        booking.appointment_book(
            patient=patient, practitioner=practitioner, appointment_type=t, start=start
        )
        return "ok"

    outcomes = _in_threads(committed_acme, len(jobs), book)
    assert outcomes.count("ok") == 5, outcomes
    assert outcomes.count("409") == len(jobs) - 5
    with in_clinic(committed_acme):
        assert _overdrawn_rows() == [] and selectors.ledger_mismatches() == []
        assert appointments_overlapping() == []

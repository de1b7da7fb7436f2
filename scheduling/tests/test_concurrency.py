"""Races against the real database: threads, each on its own connection, committing."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.db import close_old_connections, connection
from django_tenants.utils import schema_context

from scheduling import availability, selectors, services
from scheduling.errors import SlotUnavailableError
from scheduling.models import Appointment
from scheduling.tests import factories as f
from tests.fixtures import in_clinic


def _race(clinic, jobs: list[dict], setup: dict) -> list[str]:
    barrier = threading.Barrier(len(jobs))

    def run(job: dict) -> str:
        try:
            with schema_context(clinic.schema_name):
                barrier.wait(timeout=30)
                services.appointment_book(
                    patient=job["patient"],
                    practitioner=setup["p"],
                    appointment_type=setup["t"],
                    start=job["start"],
                )
                return "booked"
        except SlotUnavailableError:
            return "409"
        except Exception as error:  # noqa: BLE001  (any other outcome fails the test)
            return f"error: {type(error).__name__}: {error}"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        outcomes = list(pool.map(run, jobs))
    close_old_connections()
    return outcomes


def test_fifty_threads_booking_the_same_slot_book_exactly_one(committed_acme):
    with in_clinic(committed_acme):
        p = f.practitioner()
        t = f.appointment_type(p, minutes=60, after=10)
        start = f.local(f.next_weekday(2), 10)
        jobs = [{"patient": f.patient(), "start": start} for _ in range(50)]
    outcomes = _race(committed_acme, jobs, {"p": p, "t": t})
    assert outcomes.count("booked") == 1, outcomes
    assert outcomes.count("409") == 49, outcomes
    with in_clinic(committed_acme):
        assert Appointment.objects.filter(practitioner=p).count() == 1
        assert selectors.appointments_overlapping() == []


def test_fifty_threads_booking_overlapping_slots_never_overlap(committed_acme):
    with in_clinic(committed_acme):
        p = f.practitioner()
        t = f.appointment_type(p, minutes=60)
        base = f.local(f.next_weekday(3), 9)
        # Starts every 5 minutes from 09:00 to 13:05: many pairs overlap.
        jobs = [
            {"patient": f.patient(), "start": base + timedelta(minutes=5 * i)} for i in range(50)
        ]
    outcomes = _race(committed_acme, jobs, {"p": p, "t": t})
    assert not [o for o in outcomes if o.startswith("error")], outcomes
    booked = outcomes.count("booked")
    assert booked >= 3 and booked + outcomes.count("409") == 50  # each visit blocks 115 min
    with in_clinic(committed_acme):
        rows = list(Appointment.objects.filter(practitioner=p).order_by("start"))
        assert len(rows) == booked
        for left, right in zip(rows, rows[1:]):
            assert left.end <= right.start
        assert selectors.appointments_overlapping() == []


def _lockable_elsewhere(clinic, practitioner_id: int) -> bool:
    """Whether another connection can take the practitioner's row lock right now."""
    from django.db import DatabaseError, transaction

    from practice.models import Practitioner

    def attempt() -> bool:
        try:
            with schema_context(clinic.schema_name), transaction.atomic():
                qs = Practitioner.objects.select_for_update(nowait=True, no_key=True)
                return qs.filter(pk=practitioner_id).exists()
        except DatabaseError:
            return False
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(attempt).result(timeout=30)


def test_a_refused_booking_finds_alternatives_after_releasing_the_practitioner(
    committed_acme, monkeypatch
):
    """The losers of a race must not compute their alternatives while holding the
    practitioner's lock (they would do it one at a time)."""
    with in_clinic(committed_acme):
        p = f.practitioner()
        t = f.appointment_type(p, minutes=60)
        start = f.local(f.next_weekday(2), 10)
        services.appointment_book(patient=f.patient(), practitioner=p, appointment_type=t,
                                  start=start)  # fmt: skip
        lockable = []
        original = availability.suggested_alternatives

        def probe(**kwargs):
            lockable.append(_lockable_elsewhere(committed_acme, p.pk))
            return original(**kwargs)

        monkeypatch.setattr(availability, "suggested_alternatives", probe)
        try:
            services.appointment_book(patient=f.patient(), practitioner=p, appointment_type=t,
                                      start=start)  # fmt: skip
        except SlotUnavailableError as refused:
            assert refused.extra["conflicting_appointments"]
            assert len(refused.extra["suggested_alternatives"]) >= 3
        else:
            raise AssertionError("the second booking of one slot was not refused")
        assert lockable == [True]

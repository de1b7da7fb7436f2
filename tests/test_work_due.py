"""The beat's index of the clinics with background work (tenants.models.WorkDue): a clinic's own
tables mark it due through triggers, the sweeps settle it to when its rows are next due, and
the beat reads only the clinics that are due."""

import re
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scheduling.models import NextAvailable, NextAvailableAt, SmartBookingJob
from scheduling.next_available import tasks as next_available_tasks
from scheduling.next_available.refresh import next_available_refresh
from scheduling.smart.job import smart_jobs_next_due
from scheduling.smart.tasks import sweep_smart_bookings_task
from scheduling.tests import factories as f
from tenants.models import WORK_KINDS
from tenants.selectors import clinics_with_work_due
from tenants.services import work_due_settle
from tests.fixtures import in_clinic

KIND = "smart_bookings"
STUCK = timedelta(seconds=settings.SMART_BOOKING_STUCK_SECONDS)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # "due now", whatever the clock says
# The instant every test runs at (ticking: the threads' locks and the settle need time to pass).
NOW = datetime(2026, 12, 12, 18, 40, tzinfo=UTC)  # a Saturday evening


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(NOW, tick=True):
        yield


def _due_at(schema: str, kind: str = KIND) -> datetime | None:
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT due_at FROM public.tenants_workdue WHERE schema_name = %s AND kind = %s",
            [schema, kind],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _due(**when) -> list[str]:
    return [clinic.schema_name for clinic in clinics_with_work_due(KIND, **when)]


def _settle(schema: str) -> None:
    sql, params = smart_jobs_next_due(queued_after=STUCK, running_after=STUCK)
    work_due_settle(KIND, [schema], sql=sql, params=params)


def _job(clinic, **fields) -> SmartBookingJob:
    with in_clinic(clinic):
        return SmartBookingJob.objects.create(patient=f.patient(), request={}, **fields)


def test_a_queued_job_marks_its_clinic_and_the_sweep_settles_it(committed_acme, committed_globex):
    acme, globex = committed_acme.schema_name, committed_globex.schema_name
    job = _job(committed_acme)
    assert _due_at(acme) == EPOCH and _due_at(globex) is None
    assert _due() == [acme]

    assert sweep_smart_bookings_task.apply().get() == 0  # fresh: nothing to requeue
    # Settled: due when the job would count as stuck, not before.
    assert _due_at(acme) == job.created_at + STUCK
    just_before = job.created_at + STUCK - timedelta(seconds=1)
    assert _due(now=just_before) == []
    assert _due(now=job.created_at + STUCK) == [acme]

    with in_clinic(committed_acme):  # finished: a state the sweep passes over marks nothing
        SmartBookingJob.objects.filter(pk=job.pk).update(
            status="completed", completed_at=timezone.now()
        )
    assert _due_at(acme) == job.created_at + STUCK
    _settle(acme)
    assert _due_at(acme) is None  # nothing left that could become stuck


def test_writes_outside_the_swept_states_mark_nothing(committed_acme):
    acme = committed_acme.schema_name
    _job(committed_acme, status="completed", completed_at=timezone.now())
    with in_clinic(committed_acme):
        SmartBookingJob.objects.filter(status="queued").update(  # no row
            status="failed", completed_at=timezone.now()
        )
    assert _due_at(acme) is None


def test_a_later_write_marks_a_settled_clinic_due_again(committed_acme):
    acme = committed_acme.schema_name
    first = _job(committed_acme)
    _settle(acme)
    assert _due_at(acme) == first.created_at + STUCK
    long_ago = timezone.now() - timedelta(hours=1)
    _job(committed_acme, status="running", started_at=long_ago)
    assert _due_at(acme) == EPOCH
    _settle(acme)
    assert _due_at(acme) == long_ago + STUCK  # in the past: the next beat requeues it


def test_the_settle_waits_for_a_transaction_that_marked_the_clinic(committed_acme, settings):
    """A job written while the sweep settles is never missed: the writer's trigger holds the
    clinic's advisory lock shared (the row already said "due", so it wrote nothing to it), and
    the settle takes it exclusively before it reads the jobs, so it waits for the writer's
    commit and then sees the job. Read first, it would have settled to the older job's time."""
    settings.WORK_DUE_SETTLE_LOCK_MS = 20_000  # a slow machine's pause is no lock timeout
    acme = committed_acme.schema_name
    first = _job(committed_acme)
    assert _due_at(acme) == EPOCH
    with in_clinic(committed_acme):
        patient = f.patient()
    long_ago = timezone.now() - timedelta(hours=1)
    written, release, settled = threading.Event(), threading.Event(), threading.Event()
    errors = []

    def writer():
        try:
            with in_clinic(committed_acme), transaction.atomic():
                SmartBookingJob.objects.create(
                    patient=patient, request={}, status="running", started_at=long_ago
                )
                written.set()
                assert release.wait(10)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connections.close_all()

    def settler():
        try:
            _settle(acme)
            settled.set()
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer), threading.Thread(target=settler)]
    threads[0].start()
    assert written.wait(10)
    threads[1].start()
    time.sleep(0.5)
    waited = not settled.is_set()
    release.set()
    for thread in threads:
        thread.join(15)
    assert not errors, errors
    assert waited, "the settle did not wait for the writer's transaction"
    assert settled.is_set()
    assert _due_at(acme) == long_ago + STUCK < first.created_at + STUCK


def test_a_clinic_locked_past_the_timeout_stays_due(committed_acme, settings):
    """A clinic whose writers hold its lock longer than the settle waits is left due, for the
    next beat, and the sweep goes on."""
    settings.WORK_DUE_SETTLE_LOCK_MS = 100
    acme = committed_acme.schema_name
    _job(committed_acme)
    with transaction.atomic(), connection.cursor() as cursor:  # a writer that does not finish
        cursor.execute(
            "SELECT pg_advisory_xact_lock_shared(hashtext(%s), hashtext(%s))", [acme, KIND]
        )
        holder = threading.Thread(target=_settle_and_close, args=(acme,))
        holder.start()
        holder.join(10)
    assert _due_at(acme) == EPOCH
    _settle(acme)
    assert _due_at(acme) > EPOCH


def _settle_and_close(schema: str) -> None:
    try:
        _settle(schema)
    finally:
        connections.close_all()


def test_the_beat_reads_no_clinic_table_when_nothing_is_due(committed_acme, committed_globex):
    _job(committed_acme)
    sweep_smart_bookings_task.apply().get()  # settles acme: due in a minute
    with CaptureQueriesContext(connection) as queries:
        assert sweep_smart_bookings_task.apply().get() == 0
    statements = " ".join(q["sql"] for q in queries.captured_queries)
    assert "tenants_workdue" in statements
    assert SmartBookingJob._meta.db_table not in statements


def test_every_kind_has_its_triggers_in_the_template_and_in_a_clinic(committed_acme):
    """Each kind's table marks its clinic on INSERT and on UPDATE, with the states of
    WORK_KINDS; a clinic copied from the template has the same triggers."""

    def triggers(schema: str) -> dict[str, set[tuple[str, tuple[str, ...]]]]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t "
                "JOIN pg_class r ON r.oid = t.tgrelid "
                "WHERE r.relnamespace = to_regnamespace(%s) AND t.tgname LIKE 'work_due_%%'",
                [schema],
            )
            found: dict[str, set] = {}
            for (definition,) in cursor.fetchall():
                event = re.search(r"AFTER (INSERT|UPDATE) ON", definition).group(1)
                args = re.search(r"clinic_work_changed\((.*)\)", definition).group(1)
                kind, *states = [a.strip(" '") for a in args.split(",")]
                found.setdefault(kind, set()).add((event, tuple(states)))
            return found

    expected = {
        kind: {("INSERT", states), ("UPDATE", states)} for kind, states in WORK_KINDS.items()
    }
    assert triggers(settings.CLINIC_TEMPLATE_SCHEMA) == expected
    assert triggers(committed_acme.schema_name) == expected
    with connection.cursor() as cursor:  # next_available: what its rows are computed from
        cursor.execute(
            "SELECT DISTINCT r.relname FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid "
            "WHERE r.relnamespace = to_regnamespace(%s) "
            "AND pg_get_triggerdef(t.oid) LIKE '%%''next_available''%%' ORDER BY 1",
            [committed_acme.schema_name],
        )
        assert [row[0] for row in cursor.fetchall()] == [
            "practice_practitioner",
            "scheduling_appointmenttype",
            "scheduling_nextavailable",
            "scheduling_nextavailableat",
            "scheduling_workinghours",
        ]


NEXT = "next_available"
MARGIN = timedelta(seconds=2 * settings.NEXT_AVAILABLE_REFRESH_SECONDS)


@pytest.fixture
def queued_refreshes(monkeypatch) -> list[str]:
    """The clinics whose stale rows the next-available sweep queued a refresh of (the refreshes
    a change queues on commit are not run either)."""
    queued: list[str] = []

    def delay(*args, stale: bool = False, **kwargs) -> None:
        if stale:
            queued.append(connection.schema_name)

    monkeypatch.setattr(next_available_tasks.refresh_next_available_task, "delay", delay)
    return queued


def _next_available_sweep() -> int:
    return next_available_tasks.refresh_next_available_everywhere_task.apply().get()


def test_next_available_settles_to_when_a_slot_comes_within_its_notice(
    committed_acme, committed_globex, queued_refreshes
):
    """The next-available sweep asks only the clinics the index names, and settles each to the
    moment its earliest slot comes within its type's minimum notice (less the sweep's margin)
    or a row reaches a day's age; a clinic without practitioners keeps no row."""
    acme, globex = committed_acme.schema_name, committed_globex.schema_name
    with in_clinic(committed_acme):
        p = f.practitioner()
        f.appointment_type(p, minutes=30, notice=60)
    assert _due_at(acme, NEXT) == EPOCH  # a practitioner written
    assert _due_at(globex, NEXT) is None
    with in_clinic(committed_acme):
        next_available_refresh()
        now = timezone.now()
        slot = now + timedelta(hours=3)
        NextAvailable.objects.update(start=slot, computed_at=now)
        NextAvailableAt.objects.update(start=slot + timedelta(hours=1), computed_at=now)

    assert _next_available_sweep() == 0 and queued_refreshes == []
    due = _due_at(acme, NEXT)
    assert due == slot - timedelta(minutes=60) - MARGIN
    assert clinics_with_work_due(NEXT, now=due - timedelta(seconds=1)) == []

    with time_machine.travel(due + timedelta(seconds=1), tick=False):
        assert [c.schema_name for c in clinics_with_work_due(NEXT)] == [acme]
        assert _next_available_sweep() == 1  # now stale: its refresh is queued
    assert queued_refreshes == [acme]
    assert _due_at(acme, NEXT) == due  # still due, until the refresh writes its rows

    with in_clinic(committed_acme):
        NextAvailable.objects.update(start=None)  # a row without a slot: due at once
    assert _due_at(acme, NEXT) == EPOCH
    _next_available_sweep()
    assert _due_at(acme, NEXT) == EPOCH


def test_next_available_rows_reach_the_safety_net_age(committed_acme, queued_refreshes):
    acme = committed_acme.schema_name
    with in_clinic(committed_acme):
        p = f.practitioner()
        f.appointment_type(p, minutes=30, notice=60)
        next_available_refresh()
        computed = timezone.now() - timedelta(hours=2)
        far = timezone.now() + timedelta(days=20)
        NextAvailable.objects.update(start=far, computed_at=computed)
        NextAvailableAt.objects.update(start=far, computed_at=computed)
    _next_available_sweep()
    assert _due_at(acme, NEXT) == computed + timedelta(days=1)


@pytest.mark.parametrize("change", ["practitioner", "hours", "type"])
def test_what_next_available_is_computed_from_marks_the_clinic(
    committed_acme, queued_refreshes, change
):
    """A settled clinic is due again when its practitioners, their working hours or their
    types are written: such a write can make a row stale before its settled time."""
    acme = committed_acme.schema_name
    with in_clinic(committed_acme):
        p = f.practitioner()
        kind = f.appointment_type(p, minutes=30, notice=60)
        next_available_refresh()
        far = timezone.now() + timedelta(days=20)  # made up: settled for days
        NextAvailable.objects.update(start=far, computed_at=timezone.now())
        NextAvailableAt.objects.update(start=far, computed_at=timezone.now())
    _next_available_sweep()
    assert _due_at(acme, NEXT) > timezone.now()
    with in_clinic(committed_acme):
        if change == "practitioner":
            f.practitioner()
        elif change == "hours":
            p.working_hours.update(end_time=p.working_hours.first().end_time)
        else:
            kind.min_notice_minutes = 24 * 60
            kind.save()
    assert _due_at(acme, NEXT) == EPOCH
    _next_available_sweep()
    assert queued_refreshes == ([acme] if change == "practitioner" else [])


def test_the_next_available_sweep_reads_no_clinic_table_when_nothing_is_due(
    committed_acme, queued_refreshes
):
    with in_clinic(committed_acme):
        p = f.practitioner()
        f.appointment_type(p, minutes=30, notice=60)
        next_available_refresh()
        far = timezone.now() + timedelta(days=20)
        NextAvailable.objects.update(start=far, computed_at=timezone.now())
        NextAvailableAt.objects.update(start=far, computed_at=timezone.now())
    _next_available_sweep()  # settles acme: due in a day (the safety net)
    with CaptureQueriesContext(connection) as queries:
        assert _next_available_sweep() == 0
    statements = " ".join(q["sql"] for q in queries.captured_queries)
    assert "tenants_workdue" in statements
    assert NextAvailable._meta.db_table not in statements

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from practice.models import ClinicSettings
from scheduling import services
from scheduling.models import NextAvailable
from scheduling.next_available import refresh
from scheduling.tests import factories as f
from tests.fixtures import in_clinic


def test_search_carries_next_available_and_filters_on_it(acme, client_for):
    with in_clinic(acme):
        s = f.specialty("physio")
        soon = f.practitioner(specialties=(s,), name="Soon Available")
        # Works only the day after tomorrow (New York): never free before `soon` is.
        later_day = (datetime.now(ZoneInfo("America/New_York")) + timedelta(days=2)).weekday()
        later = f.practitioner(specialties=(s,), name="Later Available", weekdays=(later_day,))
        booked_out = f.practitioner(specialties=(s,), name="Fully Booked", weekdays=())
        f.appointment_type(soon, later, booked_out, minutes=30)
        assert refresh.next_available_refresh() == 3
        rows = {r.practitioner_id: r.start for r in NextAvailable.objects.all()}
        assert rows[booked_out.pk] is None and rows[soon.pk] < rows[later.pk]
    client = client_for(acme)
    results = client.get("/api/v1/practitioners/", {"specialty": "physio"}).json()["results"]
    by_name = {r["display_name"]: r["next_available"] for r in results}
    assert by_name["Fully Booked"] is None
    assert datetime.fromisoformat(by_name["Soon Available"]) == rows[soon.pk]
    cutoff = (rows[soon.pk] + timedelta(minutes=1)).isoformat()
    filtered = client.get(
        "/api/v1/practitioners/", {"specialty": "physio", "available_before": cutoff}
    )
    assert [r["display_name"] for r in filtered.json()["results"]] == ["Soon Available"]
    for wrong in ("someday", "2026-02-30", "2026-12-08T25:00"):  # unreadable, impossible
        bad = client.get("/api/v1/practitioners/", {"available_before": wrong})
        assert bad.status_code == 400 and "available_before" in bad.json()["errors"], wrong


def test_next_available_adds_no_query_per_practitioner(acme, client_for):
    with in_clinic(acme):
        s = f.specialty("physio")
        ps = [f.practitioner(specialties=(s,)) for _ in range(3)]
        f.appointment_type(*ps, minutes=30)
        refresh.next_available_refresh()
    client = client_for(acme)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/api/v1/practitioners/", {"specialty": "physio"}).status_code == 200
        return len(queries.captured_queries)

    count()  # warm: the connection's search_path and the user are set once
    few = count()
    with in_clinic(acme):
        more = [f.practitioner(specialties=(s,)) for _ in range(12)]
        f.appointment_type(*more, minutes=30)
        refresh.next_available_refresh()
    assert count() == few


def test_booking_the_next_slot_moves_next_available_after_refresh(acme):
    with in_clinic(acme):
        p = f.practitioner(hours=((time(9), time(10)),), weekdays=(f.next_weekday(2).weekday(),))
        t = f.appointment_type(p, minutes=60, notice=0)
        refresh.next_available_refresh(practitioner_ids=[p.pk])
        first = NextAvailable.objects.get(practitioner=p).start
        services.appointment_book(
            patient=f.patient(), practitioner=p, appointment_type=t, start=first
        )
        refresh.next_available_refresh(practitioner_ids=[p.pk])
        next_week = first.astimezone(ZoneInfo(p.timezone)).date() + timedelta(days=7)
        assert NextAvailable.objects.get(practitioner=p).start == f.local(next_week, 9)


def test_only_changes_that_can_move_next_available_queue_a_refresh(
    acme, monkeypatch, django_capture_on_commit_callbacks
):
    from zoneinfo import ZoneInfo

    from scheduling.next_available import tasks

    queued = []
    monkeypatch.setattr(tasks.refresh_next_available_task, "delay", queued.append)
    with in_clinic(acme):
        ClinicSettings.load()  # the row a provisioned clinic has (created, it refreshes all)
        p = f.practitioner(hours=((time(9), time(12)),))
        t = f.appointment_type(p, minutes=60, notice=0)
        patient = f.patient()
        refresh.next_available_refresh(practitioner_ids=[p.pk])
        first = NextAvailable.objects.get(practitioner=p).start
        later_day = first.astimezone(ZoneInfo(p.timezone)).date() + timedelta(days=14)

        def changes(action):
            with django_capture_on_commit_callbacks(execute=True):
                return action()

        far = changes(lambda: services.appointment_book(
            patient=patient, practitioner=p, appointment_type=t, start=f.local(later_day, 9)
        ))  # fmt: skip
        changes(lambda: services.appointment_check_in(appointment=far, now=far.start))
        assert queued == []  # two weeks after the next slot, and a check-in: nothing moves
        taken = changes(lambda: services.appointment_book(
            patient=patient, practitioner=p, appointment_type=t, start=first
        ))  # fmt: skip
        assert queued == [[p.pk]]  # took the next slot
        refresh.next_available_refresh(practitioner_ids=[p.pk])
        assert NextAvailable.objects.get(practitioner=p).start > first
        changes(lambda: services.appointment_cancel(appointment=far))
        assert queued == [[p.pk]]  # freeing time after the next slot cannot open an earlier one
        changes(lambda: services.appointment_cancel(appointment=taken))
        assert queued == [[p.pk], [p.pk]]  # freed time before the next slot
        NextAvailable.objects.filter(practitioner=p).update(start=None)
        assert refresh.next_available_may_move(practitioner_id=p.pk, touched_from=first)


# 03:00 in New York: the factories' 09:00-17:00 hours put every next slot hours past its
# minimum notice (at 14:00 the next slot sits right at now + notice, inside the beat's margin).
BEFORE_HOURS = datetime(2026, 12, 9, 8, 0, tzinfo=UTC)


@time_machine.travel(BEFORE_HOURS)
def test_the_beat_refreshes_only_rows_the_clock_overtakes(acme, globex, monkeypatch):
    """A slot still far enough ahead stays right as time passes (changes queue their own
    refresh), so the beat leaves it alone; a slot inside minimum notice plus a margin, no slot,
    no row, or a row a day old is refreshed. One query finds the clinics with such rows."""
    from django.utils import timezone

    from scheduling.next_available import tasks

    queued = []
    monkeypatch.setattr(
        tasks.refresh_next_available_task,
        "delay",
        lambda *a, **kw: queued.append((connection.schema_name, a, kw)),
    )
    with in_clinic(globex):
        quiet = f.practitioner()
        f.appointment_type(quiet, minutes=30, notice=24 * 60)
        refresh.next_available_refresh()
    with in_clinic(acme):
        ps = {name: f.practitioner(name=name) for name in ("far", "soon", "none", "old", "new")}
        f.appointment_type(*ps.values(), minutes=30, notice=60)
        refresh.next_available_refresh()
        rows = NextAvailable.objects.filter
        now = timezone.now()
        rows(practitioner=ps["far"]).update(start=now + timedelta(hours=3))
        rows(practitioner=ps["soon"]).update(start=now + timedelta(minutes=61))  # notice + 1 min
        rows(practitioner=ps["none"]).update(start=None)
        rows(practitioner=ps["old"]).update(computed_at=now - timedelta(days=2))
        rows(practitioner=ps["new"]).delete()
        inactive = f.practitioner(name="gone")
        inactive.is_active = False
        inactive.save()
        queued.clear()
        assert refresh.clinics_with_stale_next_available(
            [acme.schema_name, globex.schema_name, "no_such_schema"]
        ) == [acme.schema_name]  # globex's slot is a day's notice away, computed just now
        tasks.refresh_next_available_everywhere_task()
        assert queued == [(acme.schema_name, (), {"stale": True})]
        before = dict(rows().values_list("practitioner_id", "computed_at"))
        assert refresh.next_available_refresh_stale() == 4
        after = dict(rows().values_list("practitioner_id", "computed_at"))
        refreshed = {pk for pk, at in after.items() if at != before.get(pk)}
        assert refreshed == {ps[name].pk for name in ("soon", "none", "old", "new")}
        # "none" has a free slot after all; "far" kept its (made-up) slot: nothing overtook it
        assert after.keys() == {p.pk for p in ps.values()}
        assert rows(practitioner=ps["far"]).get().start == now + timedelta(hours=3)
        assert refresh.next_available_refresh_stale() == 0  # fresh now, nothing to do


def test_schedule_rule_changes_queue_a_refresh_of_those_practitioners(
    acme, monkeypatch, django_capture_on_commit_callbacks
):
    """The beat no longer recomputes everyone, so every change the next slot depends on
    queues a refresh once it commits: working hours, time off, the appointment type and who
    offers it, the practitioner, the clinic's slot step."""
    from django.utils import timezone

    from practice.models import ClinicSettings
    from scheduling.models import TimeOff
    from scheduling.next_available import tasks

    queued = []
    monkeypatch.setattr(tasks.refresh_next_available_task, "delay", queued.append)

    def queues(action) -> list:
        queued.clear()
        with django_capture_on_commit_callbacks(execute=True):
            action()
        return list(queued)

    with in_clinic(acme):
        p, other = f.practitioner(), f.practitioner()
        t = f.appointment_type(p, minutes=30)
        hours = p.working_hours.first()
        hours.end_time = time(16)
        assert queues(hours.save) == [[p.pk]]
        assert queues(hours.delete) == [[p.pk]]
        start = timezone.now() + timedelta(days=1)
        away = TimeOff(practitioner=p, start=start, end=start + timedelta(hours=2))
        assert queues(away.save) == [[p.pk]]
        assert queues(away.delete) == [[p.pk]]
        t.min_notice_minutes = 120
        assert queues(t.save) == [[p.pk]]
        assert queues(lambda: t.practitioners.add(other)) == [[other.pk]]
        assert queues(lambda: other.appointment_types.remove(t)) == [[other.pk]]
        other.timezone = "Europe/Dublin"
        assert queues(other.save) == [[other.pk]]
        assert queues(ClinicSettings.objects.get_or_create(pk=1)[0].save) == [None]
        assert queues(t.delete) == [None]


def test_a_refresh_that_moves_nothing_keeps_the_cached_answers(
    acme, django_capture_on_commit_callbacks
):
    from django.core.cache import cache

    from clinic.api import ANSWERS_VERSION_KEY

    def refresh_then_version() -> str | None:
        with django_capture_on_commit_callbacks(execute=True):
            refresh.next_available_refresh()
        return cache.get(ANSWERS_VERSION_KEY)

    with in_clinic(acme):
        p = f.practitioner()
        f.appointment_type(p, minutes=30)
        version = refresh_then_version()
        assert version is not None
        assert refresh_then_version() == version
        NextAvailable.objects.filter(practitioner=p).update(start=None)
        assert refresh_then_version() != version

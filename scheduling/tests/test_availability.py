from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from practice.models import ClinicSettings
from scheduling import availability, services
from scheduling.models import TimeOff
from scheduling.tests import factories as f
from tests.fixtures import in_clinic

# The DST tests look at fixed days of 2027: they run at an instant before all of them, so none
# is in the past whenever the suite runs.
BEFORE_2027_DST = datetime(2027, 1, 4, 12, tzinfo=UTC)


def _local_starts(result, tz: str) -> list[str]:
    return [slot.start.astimezone(ZoneInfo(tz)).strftime("%H:%M") for slot in result.slots]


@pytest.mark.parametrize(
    ("tz", "day"),
    [
        ("America/New_York", date(2027, 3, 14)),  # spring forward
        ("America/New_York", date(2027, 11, 7)),  # fall back
        ("Europe/Dublin", date(2027, 3, 28)),
        ("Europe/Dublin", date(2027, 10, 31)),
    ],
)
@time_machine.travel(BEFORE_2027_DST)
def test_working_hours_stay_on_the_wall_clock_on_dst_days(acme, tz, day):
    with in_clinic(acme):
        p = f.practitioner(tz=tz)
        t = f.appointment_type(p, minutes=60)
        zone = ZoneInfo(tz)
        start = f.local(day, 0, tz=tz)
        [result] = availability.availability(
            appointment_type=t, start=start, end=start + timedelta(days=1), practitioner_ids=[p.pk]
        )
        starts = _local_starts(result, tz)
        assert starts[0] == "09:00" and starts[-1] == "16:00"
        assert len(starts) == 29  # 09:00..16:00 every 15 minutes
        assert all(slot.start.astimezone(zone).date() == day for slot in result.slots)
        # The UTC offset changed that day, yet 09:00 local is still the first slot.
        first = result.slots[0].start
        assert first.astimezone(zone).utcoffset() == f.local(day, 9, tz=tz).utcoffset()


def test_slots_respect_blocks_time_off_buffers_and_step(acme):
    with in_clinic(acme):
        p = f.practitioner(hours=((time(9), time(12)), (time(13), time(17))))
        t = f.appointment_type(p, minutes=60, before=0, after=15)
        patient = f.patient()
        day = f.next_weekday(2)
        services.appointment_book(
            patient=patient, practitioner=p, appointment_type=t, start=f.local(day, 10, 30)
        )
        TimeOff.objects.create(practitioner=p, start=f.local(day, 15), end=f.local(day, 17))
        [result] = availability.availability(
            appointment_type=t,
            start=f.local(day, 0),
            end=f.local(day, 23),
            practitioner_ids=[p.pk],
        )
        starts = _local_starts(result, "America/New_York")
        # 10:30-11:30 is booked and blocks until 11:45; a candidate's own 15-minute buffer
        # must end by 10:30, and its visit by the block's end (12:00) or the time off (15:00).
        assert starts == ["09:00", "09:15", "13:00", "13:15", "13:30", "13:45", "14:00"]


def test_clinic_slot_step_is_used(acme):
    with in_clinic(acme):
        ClinicSettings.objects.update_or_create(id=1, defaults={"slot_step_minutes": 30})
        p = f.practitioner(hours=((time(9), time(11)),))
        t = f.appointment_type(p, minutes=30)
        day = f.next_weekday(1)
        [result] = availability.availability(
            appointment_type=t, start=f.local(day, 0), end=f.local(day, 23), practitioner_ids=[p.pk]
        )
        assert _local_starts(result, "America/New_York") == ["09:00", "09:30", "10:00", "10:30"]


def test_minimum_notice_and_horizon_trim_the_window(acme):
    with in_clinic(acme):
        p = f.practitioner(hours=((time(0), time(23, 59)),))
        t = f.appointment_type(p, minutes=30, notice=24 * 60, horizon=3)
        now = timezone.now()
        [result] = availability.availability(
            appointment_type=t, start=now, end=now + timedelta(days=10), practitioner_ids=[p.pk]
        )
        assert result.slots[0].start >= now + timedelta(hours=24)
        assert result.slots[-1].start <= now + timedelta(days=3)


def test_location_filter_keeps_only_hours_at_that_location(acme):
    with in_clinic(acme):
        north, south = f.location("North"), f.location("South")
        p = f.practitioner(at=north, hours=((time(9), time(10)),))
        from scheduling.models import WorkingHours

        WorkingHours.objects.create(
            practitioner=p, weekday=f.next_weekday(3).weekday(), start_time=time(14),
            end_time=time(15), location=south,
        )  # fmt: skip
        t = f.appointment_type(p, minutes=60)
        day = f.next_weekday(3)
        [result] = availability.availability(
            appointment_type=t,
            start=f.local(day, 0),
            end=f.local(day, 23),
            practitioner_ids=[p.pk],
            location_id=south.pk,
        )
        assert _local_starts(result, "America/New_York") == ["14:00"]
        assert result.slots[0].location_id == south.pk


def test_availability_query_count_is_constant(acme, django_assert_max_num_queries):
    with in_clinic(acme):
        s = f.specialty("physio")
        few = [f.practitioner(specialties=(s,))]
        t = f.appointment_type(*few, minutes=30)
        start = f.local(f.next_weekday(0), 0)
        ClinicSettings.load()

        def count(days: int) -> int:
            from django.db import connection
            from django.test.utils import CaptureQueriesContext

            with CaptureQueriesContext(connection) as ctx:
                availability.availability(
                    appointment_type=t,
                    start=start,
                    end=start + timedelta(days=days),
                    specialty="physio",
                )
            return len(ctx.captured_queries)

        one_day_one = count(1)
        assert one_day_one == 1  # the inputs in one round trip (availability_query)
        more = [f.practitioner(specialties=(s,)) for _ in range(9)]
        t.practitioners.add(*more)
        patient = f.patient()
        for p in more[:5]:
            services.appointment_book(
                patient=patient,
                practitioner=p,
                appointment_type=t,
                start=start + timedelta(hours=10),
            )
        fourteen_days_ten = count(14)
        assert fourteen_days_ten == one_day_one
        with django_assert_max_num_queries(one_day_one):
            availability.availability(
                appointment_type=t, start=start, end=start + timedelta(days=14), specialty="physio"
            )


@time_machine.travel(BEFORE_2027_DST)
def test_even_grid_shortcut_gives_the_wall_clock_answer(acme, monkeypatch):
    """Blocks without a DST change are walked as an even grid of integers; the answer must be
    the one the wall-clock walk gives, for blocks that cross a change too (night hours on the
    DST Sundays), with buffers, time off, bookings and overlapping blocks."""
    with in_clinic(acme):
        ny = f.practitioner(
            hours=((time(0), time(5)), (time(9), time(12, 10)), (time(11), time(17)))
        )
        dublin = f.practitioner(
            tz="Europe/Dublin", hours=((time(0, 30), time(3)), (time(13), time(18)))
        )
        t = f.appointment_type(ny, dublin, minutes=45, before=5, after=10)
        patient = f.patient()
        for p, tz, hour, days in (
            (ny, "America/New_York", 10, (date(2027, 3, 14), date(2027, 11, 7))),
            (dublin, "Europe/Dublin", 13, (date(2027, 3, 28), date(2027, 10, 31))),
        ):
            for day in days:
                services.appointment_book(
                    patient=patient,
                    practitioner=p,
                    appointment_type=t,
                    start=f.local(day, hour, 5, tz=tz),
                )
                TimeOff.objects.create(practitioner=p, start=f.local(day, 15, tz=tz),
                                       end=f.local(day, 15, 40, tz=tz))  # fmt: skip

        def answer(start: date, days: int) -> list:
            begin = f.local(start, 0)
            return [
                (r.practitioner.pk, s.start, s.end, s.location_id)
                for r in availability.availability(
                    appointment_type=t,
                    start=begin,
                    end=begin + timedelta(days=days),
                    practitioner_ids=[ny.pk, dublin.pk],
                    now=begin - timedelta(days=1),
                )  # fmt: skip
                for s in r.slots
            ]

        for start in (date(2027, 3, 12), date(2027, 10, 29)):
            fast = answer(start, 12)
            monkeypatch.setattr(availability, "EVEN_GRID", False)
            slow = answer(start, 12)
            monkeypatch.setattr(availability, "EVEN_GRID", True)
            assert fast == slow
            assert len(fast) > 500
        # The night block on spring-forward day: 00:00 .. 01:15 and (02:xx does not exist)
        # the rest from 03:00 EDT; no slot twice.
        nights = [s for s in answer(date(2027, 3, 14), 1) if s[0] == ny.pk and s[1].hour < 10]
        assert len(nights) == len(set(nights))

"""The demo schedule: loaded through the services (no overlap, ledger = counters), visits in
every status around today, and loaded once."""

from zoneinfo import ZoneInfo

from django.utils import timezone

from authorizations.selectors import ledger_mismatches, lines_overdrawn
from demo.practice import practice_seed
from demo.schedule import schedule_seed
from scheduling.models import Appointment, Closure, TimeOff, WorkingHours
from scheduling.selectors import appointments_overlapping
from tests.fixtures import in_clinic


def test_the_demo_schedule_fills_the_board_and_obeys_every_rule(acme):
    with in_clinic(acme):
        practice_seed("acme")
        first = schedule_seed("acme")
        assert first["types"] == 4 and first["authorizations"] >= 20
        assert first["appointments"] > 80
        statuses = set(Appointment.objects.values_list("status", flat=True))
        assert statuses >= {"booked", "completed"} and statuses & {"cancelled", "no_show"}
        assert Appointment.objects.filter(unit_reservation__isnull=False).exists()
        assert WorkingHours.objects.exists() and TimeOff.objects.count() == 3
        assert appointments_overlapping() == []
        assert ledger_mismatches() == [] and lines_overdrawn() == []
        # a clinic holiday: a weekday ahead, clinic-wide, and no visit booked on it
        [holiday] = Closure.objects.all()
        assert holiday.location is None and holiday.start_date == holiday.end_date
        assert holiday.start_date > timezone.localdate() and holiday.start_date.weekday() < 5
        on_it = [
            a.start.astimezone(ZoneInfo(a.practitioner.timezone)).date()
            for a in Appointment.objects.select_related("practitioner")
        ]
        assert holiday.start_date not in on_it
        assert schedule_seed("acme") == first  # loaded once
        assert Closure.objects.count() == 1

"""`next_available` of a practitioner search filtered by a location is the earliest free slot
at that location (issue 18): Niamh works in Swords one weekday and in Dún Laoghaire two days
later, so her next slot anywhere is in Swords, and a search at Dún Laoghaire must say the
Dún Laoghaire day (it said the Swords one: the cached row was per practitioner, anywhere).
`available_before=` filters on the same slot; the patient finder's card names the place."""

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from practice.models import Location
from scheduling import services
from scheduling.models import NextAvailable, NextAvailableAt, WorkingHours
from scheduling.next_available import refresh
from scheduling.tests import factories as f
from tests import clock
from tests.fixtures import ClinicClient, in_clinic

DUBLIN = ZoneInfo("Europe/Dublin")


@pytest.fixture
def niamh(globex):
    """Niamh: Swords on the weekday three days from now, Dún Laoghaire on the one five days
    from now (Dublin calendar), 09:00-17:00; a 30-minute visit, an hour's notice."""
    with in_clinic(globex):
        today = clock.run_instant().astimezone(DUBLIN).date()  # the run's chosen instant
        swords_day, dun_day = today + timedelta(days=3), today + timedelta(days=5)
        swords = Location.objects.create(name="Swords", timezone="Europe/Dublin", phone="01 1")
        dun = Location.objects.create(name="Dún Laoghaire", timezone="Europe/Dublin", phone="01 2")
        niamh = f.practitioner(
            name="Niamh Kelly", tz="Europe/Dublin", at=swords, weekdays=(swords_day.weekday(),)
        )
        niamh.locations.add(dun)
        WorkingHours.objects.create(
            practitioner=niamh, weekday=dun_day.weekday(), start_time=time(9),
            end_time=time(17), location=dun,
        )  # fmt: skip
        visit = f.appointment_type(niamh, minutes=30, notice=60, horizon=60)
        refresh.next_available_refresh()
    return {
        "clinic": globex, "niamh": niamh, "visit": visit, "swords": swords, "dun": dun,
        "at_swords": datetime.combine(swords_day, time(9), DUBLIN),
        "at_dun": datetime.combine(dun_day, time(9), DUBLIN),
    }  # fmt: skip


def _next(client, **params) -> dict[str, datetime | None]:
    body = client.get("/api/v1/practitioners/", params)
    assert body.status_code == 200, body.content
    return {
        row["display_name"]: row["next_available"] and datetime.fromisoformat(row["next_available"])
        for row in body.json()["results"]
    }


def test_the_search_at_a_location_gives_the_next_slot_there(niamh):
    client = ClinicClient(niamh["clinic"])
    assert _next(client) == {"Niamh Kelly": niamh["at_swords"]}  # anywhere: Swords first
    assert _next(client, location=niamh["swords"].pk) == {"Niamh Kelly": niamh["at_swords"]}
    assert _next(client, location=niamh["dun"].pk) == {"Niamh Kelly": niamh["at_dun"]}


def test_available_before_filters_on_the_next_slot_at_the_location(niamh):
    client = ClinicClient(niamh["clinic"])
    between = (niamh["at_dun"] - timedelta(days=1)).isoformat()  # after Swords, before Dún
    assert _next(client, available_before=between) == {"Niamh Kelly": niamh["at_swords"]}
    assert _next(client, available_before=between, location=niamh["swords"].pk)
    assert _next(client, available_before=between, location=niamh["dun"].pk) == {}
    later = (niamh["at_dun"] + timedelta(minutes=1)).isoformat()
    assert _next(client, available_before=later, location=niamh["dun"].pk) == {
        "Niamh Kelly": niamh["at_dun"]
    }
    bad = client.get("/api/v1/practitioners/", {"location": "swords"})
    assert bad.status_code == 400 and "location" in bad.json()["errors"]


def test_the_search_at_a_location_costs_the_same_queries(niamh):
    client = ClinicClient(niamh["clinic"])

    def count(**params) -> int:
        with CaptureQueriesContext(connection) as queries:
            _next(client, **params)
        return len(queries.captured_queries)

    count()  # warm: the connection's search_path is set once (tests share no answers)
    assert count(location=niamh["dun"].pk, available_before="2200-01-01") == count()


def test_the_finder_at_a_location_shows_the_next_slot_there_and_names_it(niamh):
    client = ClinicClient(niamh["clinic"])
    page = client.get("/practitioners/", {"location": niamh["dun"].pk, "tz": "Europe/Dublin"})
    html = page.content.decode()
    assert niamh["at_dun"] in _times(html)  # the instant, whatever offset the page writes
    assert "at Dún Laoghaire" in html
    assert niamh["at_swords"] not in _times(html)
    anywhere = client.get("/practitioners/", {"tz": "Europe/Dublin"}).content.decode()
    assert niamh["at_swords"] in _times(anywhere) and "at Swords" in anywhere


def _times(html: str) -> set[datetime]:
    return {datetime.fromisoformat(value) for value in re.findall(r'datetime="([^"]+)"', html)}


def test_a_booking_that_takes_a_locations_next_slot_queues_a_refresh(
    niamh, monkeypatch, django_capture_on_commit_callbacks
):
    """The Dún Laoghaire slot is days after the next slot anywhere: a booking there used to
    leave the projection alone (it cannot move the Swords slot), and the search at Dún
    Laoghaire kept offering the taken slot."""
    from scheduling.next_available import tasks

    queued = []
    monkeypatch.setattr(tasks.refresh_next_available_task, "delay", queued.append)
    with in_clinic(niamh["clinic"]):
        p = niamh["niamh"]
        with django_capture_on_commit_callbacks(execute=True):
            services.appointment_book(
                patient=f.patient(), practitioner=p, appointment_type=niamh["visit"],
                start=niamh["at_dun"], location=niamh["dun"],
            )  # fmt: skip
        assert queued == [[p.pk]]
        refresh.next_available_refresh(practitioner_ids=[p.pk])
        at = dict(NextAvailableAt.objects.filter(practitioner=p).values_list("location", "start"))
        assert at == {
            niamh["swords"].pk: niamh["at_swords"],
            niamh["dun"].pk: niamh["at_dun"] + timedelta(minutes=30),
        }
        assert NextAvailable.objects.get(practitioner=p).start == niamh["at_swords"]
        # far beyond every location's next slot: nothing to refresh
        queued.clear()
        with django_capture_on_commit_callbacks(execute=True):
            services.appointment_book(
                patient=f.patient(), practitioner=p, appointment_type=niamh["visit"],
                start=niamh["at_dun"] + timedelta(days=14), location=niamh["dun"],
            )  # fmt: skip
        assert queued == []


def test_rows_follow_the_hours_and_the_beat_heals_missing_ones(niamh):
    with in_clinic(niamh["clinic"]):
        p = niamh["niamh"]
        NextAvailableAt.objects.filter(practitioner=p, location=niamh["dun"]).delete()
        # hours at a location without its row (rows from before they existed): stale
        assert refresh.next_available_refresh_stale() == 1
        assert NextAvailableAt.objects.filter(practitioner=p, location=niamh["dun"]).exists()
        assert refresh.next_available_refresh_stale() == 0
        # no hours at Dún Laoghaire any more: its row goes, and the search there lists nobody
        WorkingHours.objects.filter(practitioner=p, location=niamh["dun"]).delete()
        refresh.next_available_refresh(practitioner_ids=[p.pk])
        assert set(NextAvailableAt.objects.values_list("location", flat=True)) == {
            niamh["swords"].pk
        }
    client = ClinicClient(niamh["clinic"])
    assert _next(client, location=niamh["dun"].pk) == {}


def test_the_slot_picker_at_a_location_gives_its_number_to_call(niamh):
    """The clinic has no number of its own here: the picker kept to Dún Laoghaire said only
    "Please call the clinic." under its late-change rule; it gives Dún Laoghaire's."""
    client = ClinicClient(niamh["clinic"])
    url = f"/practitioners/{niamh['niamh'].pk}/"
    page = client.get(url, {"type": niamh["visit"].pk, "location": niamh["dun"].pk})
    policy = page.content.decode().split("data-change-policy", 1)[1].split("</div>", 1)[0]
    assert 'href="tel:012"' in policy and "(Dún Laoghaire)" in policy, policy

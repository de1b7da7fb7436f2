"""A location filter means slots at that location (issue 18): filtering Liffey by "Swords"
lists only practitioners who work there, and their slots are the ones held there; the slot
picker names each slot's location and, when its zone is not the viewer's, its zone."""

import re
from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from practice.models import Location
from scheduling.models import WorkingHours
from scheduling.tests import factories as f
from tests.fixtures import ClinicClient, in_clinic

DUBLIN, NEW_YORK = ZoneInfo("Europe/Dublin"), ZoneInfo("America/New_York")


@pytest.fixture
def liffey(globex):
    """Cian is linked to Swords and Dún Laoghaire but works only in Dún Laoghaire; Aoife works
    in Swords; Brid in both (mornings in Swords, afternoons in Dún Laoghaire)."""
    with in_clinic(globex):
        swords = Location.objects.create(name="Swords", timezone="Europe/Dublin", phone="01 1")
        dun = Location.objects.create(name="Dún Laoghaire", timezone="Europe/Dublin", phone="01 2")
        cian = f.practitioner(name="Cian Murphy", tz="Europe/Dublin", at=dun)
        cian.locations.add(swords)
        aoife = f.practitioner(name="Aoife Byrne", tz="Europe/Dublin", at=swords)
        brid = f.practitioner(
            name="Brid Walsh", tz="Europe/Dublin", at=swords, hours=((time(9), time(12)),)
        )
        brid.locations.add(dun)
        for weekday in range(7):
            WorkingHours.objects.create(
                practitioner=brid, weekday=weekday, start_time=time(14), end_time=time(17),
                location=dun,
            )  # fmt: skip
        visit = f.appointment_type(cian, aoife, brid, minutes=30, notice=60, horizon=60)
    return {"clinic": globex, "swords": swords, "dun": dun, "cian": cian, "aoife": aoife,
            "brid": brid, "visit": visit}  # fmt: skip


def _names(page: str) -> list[str]:
    return sorted(set(re.findall(r"(Cian Murphy|Aoife Byrne|Brid Walsh)", page)))


def test_the_api_search_by_location_lists_practitioners_with_hours_there(liffey):
    client = ClinicClient(liffey["clinic"])

    def listed(location):
        body = client.get("/api/v1/practitioners/", {"location": location.pk}).json()
        return sorted(row["display_name"] for row in body["results"])

    assert listed(liffey["swords"]) == ["Aoife Byrne", "Brid Walsh"]  # not Cian: linked only
    assert listed(liffey["dun"]) == ["Brid Walsh", "Cian Murphy"]


def test_the_finder_filtered_by_swords_leaves_out_who_works_elsewhere(liffey):
    client = ClinicClient(liffey["clinic"])
    everyone = client.get("/practitioners/").content.decode()
    assert _names(everyone) == ["Aoife Byrne", "Brid Walsh", "Cian Murphy"]
    swords = client.get("/practitioners/", {"location": liffey["swords"].pk}).content.decode()
    assert _names(swords) == ["Aoife Byrne", "Brid Walsh"]
    # the card's links keep the location, so the practitioner's page shows its slots there
    assert f"location={liffey['swords'].pk}" in swords


SLOT = re.compile(
    r'<a class="slot"[^>]*><time datetime="([^"]+)">([^<]+)</time>'
    r'(?:<span class="slot-where">([^<]*)</span>)?(?:<span class="slot-zone">([^<]*)</span>)?'
)


def _slots(page: str) -> list[tuple[datetime, str, str, str]]:
    """(start, time shown, place, the place's own time and zone) of each slot on the page."""
    return [
        (datetime.fromisoformat(iso), shown, place, zone)
        for iso, shown, place, zone in SLOT.findall(page)
    ]


def test_the_slot_picker_at_a_location_shows_only_its_slots_and_names_it(liffey):
    client = ClinicClient(liffey["clinic"])
    url = f"/practitioners/{liffey['brid'].pk}/"
    every = client.get(url, {"type": liffey["visit"].pk})
    places = {place for *_, place, _ in _slots(every.content.decode())}
    assert places == {"Swords", "Dún Laoghaire"}
    at_swords = client.get(url, {"type": liffey["visit"].pk, "location": liffey["swords"].pk})
    page = at_swords.content.decode()
    slots = _slots(page)
    assert slots and {place for *_, place, _ in slots} == {"Swords"}
    assert all(start.astimezone(DUBLIN).hour < 12 for start, *_ in slots)  # Swords mornings
    assert "Times at Swords" in page and "Show every location" in page
    # the week's own links keep to the location
    next_week = re.search(r'href="([^"]+)" rel="next"', page).group(1)
    assert f"location={liffey['swords'].pk}" in next_week
    # a location that is not this practitioner's is ignored: every slot again
    elsewhere = client.get(url, {"type": liffey["visit"].pk, "location": 999999})
    assert {place for *_, place, _ in _slots(elsewhere.content.decode())} == places


def test_a_slot_in_another_zone_than_the_viewers_says_its_local_time_and_zone(liffey):
    client = ClinicClient(liffey["clinic"])
    url = f"/practitioners/{liffey['aoife'].pk}/"
    new_york = client.get(url, {"type": liffey["visit"].pk, "tz": "America/New_York"})
    slots = _slots(new_york.content.decode())
    assert slots
    for start, shown, place, zone in slots:
        # shown in the viewer's (New York) time; the place's own time and zone beside it
        ny, dublin = start.astimezone(NEW_YORK), start.astimezone(DUBLIN)
        assert shown.startswith((f"{ny:%I}".lstrip("0") + f":{ny:%M}", f"{ny:%H:%M}")), shown
        assert place == "Swords" and "Dublin time" in zone
        assert f"{dublin:%I}".lstrip("0") + f":{dublin:%M}" in zone or f"{dublin:%H:%M}" in zone
    dublin_viewer = client.get(url, {"type": liffey["visit"].pk, "tz": "Europe/Dublin"})
    page = dublin_viewer.content.decode()
    assert _slots(page) and "slot-zone" not in page  # the viewer's own zone: not repeated

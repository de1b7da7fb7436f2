"""Issue 18 in Chromium: the patient's search journey at an Irish clinic on a New York laptop.
A misspelt condition ("autsim") finds the ABA practitioners and no one else; the location
filter lists only those with slots there (Niamh is linked to Dún Laoghaire but works only in
Swords), each card's next slot is one held there and names the place; the slot picker keeps to
that location and shows each slot's place and, the viewer being in New York, its own time and
zone. Live servers on committed data, axe on each page, screenshots at desktop and phone
sizes."""

from datetime import time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from practice.conditions import CONDITIONS
from practice.models import Condition, Location
from scheduling.models import WorkingHours
from scheduling.tests import factories as f
from tenants.models import Clinic
from tests.axe import axe_assert, axe_check
from tests.fixtures import in_clinic
from tests.live import open_page, save_screenshots

pytestmark = pytest.mark.usefixtures("committed")

DUBLIN = ZoneInfo("Europe/Dublin")


@pytest.fixture
def liffey(committed):
    """Globex as Liffey: Swords and Dún Laoghaire; Niamh (ABA) linked to both but working
    only in Swords; Orla (ABA) in Dún Laoghaire every day and in Swords one day a week; Cian
    (heart rhythm) in Swords. The shipped conditions (a committed test's clean-up removes
    what the migration loaded)."""
    globex = Clinic.objects.get(slug="globex")
    with in_clinic(globex):
        for name, synonyms, slugs in CONDITIONS:
            Condition.objects.create(
                name=name, synonyms=list(synonyms), specialty_slugs=list(slugs)
            )
        aba = f.specialty("behavior-analysis")
        aba.name = "Behavior analysis"
        aba.save()
        rhythm = f.specialty("electrophysiology")
        rhythm.name = "Heart rhythm"
        rhythm.save()
        swords = Location.objects.create(
            name="Swords", timezone="Europe/Dublin", phone="+353 1 555 0101"
        )
        dun = Location.objects.create(
            name="Dún Laoghaire", timezone="Europe/Dublin", phone="+353 1 555 0102"
        )
        every_day = ((time(8), time(20)),)
        niamh = f.practitioner(
            name="Niamh Kelly", tz="Europe/Dublin", at=swords, specialties=(aba,), hours=every_day
        )
        niamh.locations.add(dun)
        swords_day = (timezone.now().astimezone(DUBLIN) + timedelta(days=3)).weekday()
        orla = f.practitioner(
            name="Orla Byrne", tz="Europe/Dublin", at=dun, specialties=(aba,), hours=every_day,
            weekdays=tuple(d for d in range(7) if d != swords_day),
        )  # fmt: skip
        orla.locations.add(swords)
        WorkingHours.objects.create(
            practitioner=orla, weekday=swords_day, start_time=time(8), end_time=time(20),
            location=swords,
        )  # fmt: skip
        cian = f.practitioner(
            name="Cian Murphy", tz="Europe/Dublin", at=swords, specialties=(rhythm,),
            hours=every_day,
        )  # fmt: skip
        visit = f.appointment_type(niamh, orla, cian, minutes=45, notice=60, horizon=60)
        visit.name = "Assessment"
        visit.save()
    return {"clinic": globex, "swords": swords, "dun": dun, "visit": visit}


def _filter_by(page, location: str) -> None:
    """Choose a location in the filters (opening them: a phone-sized screenshot folds them)."""
    filters = page.locator("details.filters")
    if not filters.evaluate("details => details.open"):
        filters.locator("summary").click()
    page.get_by_label("Location").select_option(label=location)
    page.get_by_role("button", name="Show results").click()


def _names(page) -> list[str]:
    return sorted(page.locator(".practitioner-card .card-title").all_inner_texts())


def test_a_misspelt_condition_then_a_location_finds_who_has_slots_there(
    live_servers, liffey, browser
):
    base = live_servers.url("globex")
    page = open_page(browser)  # a New York laptop
    page.goto(f"{base}/practitioners/")
    page.get_by_label("Name, condition or keyword").fill("autsim")
    page.get_by_role("button", name="Show results").click()
    expect(page.locator(".practitioner-card")).to_have_count(2)
    assert _names(page) == ["Niamh Kelly", "Orla Byrne"]  # the ABA practitioners, not Cian
    axe_assert(page)
    save_screenshots(page, "search-condition-misspelt")

    # Dún Laoghaire: Orla only (Niamh is linked to it but holds no hours there).
    _filter_by(page, "Dún Laoghaire")
    expect(page.locator(".practitioner-card")).to_have_count(1)
    assert _names(page) == ["Orla Byrne"]
    expect(page.locator(".next-slot")).to_contain_text("at Dún Laoghaire")
    axe_assert(page)
    save_screenshots(page, "search-location-dun-laoghaire")

    # Swords: both (Orla's one day there); each card's next slot is held in Swords.
    _filter_by(page, "Swords")
    expect(page.locator(".practitioner-card")).to_have_count(2)
    assert _names(page) == ["Niamh Kelly", "Orla Byrne"]
    for card in page.locator(".practitioner-card").all():
        expect(card.locator(".next-slot")).to_contain_text("at Swords")
    save_screenshots(page, "search-location-swords")

    # Orla's times at Swords: the picker keeps to Swords and says where and in whose time.
    page.get_by_role("link", name="See times for Orla Byrne").click()
    expect(page.get_by_text("Times at Swords")).to_be_visible()
    slots = page.locator("a.slot")
    expect(slots.first).to_be_visible()
    places = set(page.locator("a.slot .slot-where").all_text_contents())
    assert places == {"Swords"}, places
    zones = page.locator("a.slot .slot-zone").all_text_contents()
    assert zones and all("Dublin time" in zone for zone in zones), zones
    expect(page.locator("[data-change-policy]")).to_contain_text("+353 1 555 0101 (Swords)")
    axe_assert(page)
    save_screenshots(page, "search-slot-picker-swords")

    # Every location: Dún Laoghaire's slots come back, each named.
    page.get_by_role("link", name="Show every location").click()
    expect(page.locator("a.slot .slot-where", has_text="Dún Laoghaire").first).to_be_visible()
    page.context.close()


def test_the_axe_check_fails_on_a_new_violation(live_servers, liffey, browser):
    """The pages pass axe (above, and tests/test_accessibility_browser.py) because the check
    would fail on one new critical or serious violation: a search box without its label and a
    button without a name, added to the finder, are named."""
    page = open_page(browser)
    page.goto(f"{live_servers.url('globex')}/practitioners/")
    axe_assert(page)
    page.evaluate(
        """() => {
            document.querySelector('label[for="id_q"]').remove();
            document.querySelector('#id_q').removeAttribute('placeholder');
            document.querySelector('main').append(document.createElement('button'));
        }"""
    )
    found = axe_check(page)
    assert "critical: label" in found and "critical: button-name" in found, found
    page.context.close()

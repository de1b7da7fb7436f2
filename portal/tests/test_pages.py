"""The public pages (home, directory, practitioner with its week of slots) and the error pages."""

from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone

from scheduling import services
from scheduling.tests import factories as f
from tests.fixtures import ClinicClient, in_clinic


def text(response) -> str:
    return response.content.decode()


def test_home_shows_the_clinic_its_locations_specialties_and_a_search_box(world):
    response = ClinicClient(world.clinic).get("/")
    assert response.status_code == 200
    page = text(response)
    assert "Acme Therapy" in page
    assert world.location.name in page
    assert "Speech-Therapy" in page  # the factory's specialty name
    assert 'role="search"' in page and 'name="q"' in page
    assert 'for="home-q"' in page  # every input has its label


def test_every_form_field_on_the_public_pages_has_a_label(world, patient_client):
    pages = ["/", "/practitioners/", f"/practitioners/{world.maya.pk}/", "/signin/", "/signup/",
             "/password-reset/", "/smart/"]  # fmt: skip
    for url in pages:
        page = text(
            patient_client.get(url) if url == "/smart/" else ClinicClient(world.clinic).get(url)
        )
        for chunk in (
            page.split("<select")[1:] + page.split("<input")[1:] + page.split("<textarea")[1:]
        ):
            tag = chunk.split(">", 1)[0]
            if 'type="hidden"' in tag or 'type="submit"' in tag:
                continue
            if 'type="checkbox"' in tag or 'type="radio"' in tag or "id=" in tag:
                element_id = tag.split('id="', 1)[1].split('"', 1)[0]
                assert f'for="{element_id}"' in page, (url, tag)


def test_directory_lists_practitioners_with_specialties_languages_rating_and_next_slot(world):
    response = ClinicClient(world.clinic).get("/practitioners/")
    assert response.status_code == 200
    page = text(response)
    assert "Dr. Maya Lopez" in page and "Sam Rivera" in page
    assert "Spanish" in page  # languages by name
    assert "4.8" in page and "(31)" in page
    assert page.count("Next available") == 2
    assert 'class="avatar"' in page  # the photo placeholder


def test_directory_filters_by_specialty_language_location_and_telehealth(world):
    client = ClinicClient(world.clinic)
    spanish = text(client.get("/practitioners/", {"language": "es"}))
    assert "Dr. Maya Lopez" in spanish and "Sam Rivera" not in spanish
    with in_clinic(world.clinic):
        world.sam.offers_telehealth = False
        world.sam.save()
        other = f.specialty("psychology")
    video = text(client.get("/practitioners/", {"telehealth": "on"}))
    assert "Dr. Maya Lopez" in video and "Sam Rivera" not in video
    none = text(client.get("/practitioners/", {"specialty": other.slug}))
    assert "No practitioner matches" in none
    here = text(client.get("/practitioners/", {"location": world.location.pk, "q": "maya"}))
    assert "Dr. Maya Lopez" in here and "Sam Rivera" not in here


def test_directory_next_slot_link_opens_the_week_of_that_slot(world):
    response = ClinicClient(world.clinic).get("/practitioners/", {"type": world.visit.pk})
    card = text(response).split("Dr. Maya Lopez", 1)[1]
    link = card.split('<p class="next-slot">', 1)[1].split('href="', 1)[1].split('"', 1)[0]
    query = parse_qs(urlparse(link.replace("&amp;", "&")).query)
    assert query["type"] == [str(world.visit.pk)]
    assert "from" in query


def test_practitioner_page_shows_a_week_of_slots_in_the_viewers_zone(world):
    client = ClinicClient(world.clinic)
    day = f.next_weekday(2)
    response = client.get(
        f"/practitioners/{world.maya.pk}/",
        {"type": world.visit.pk, "from": day.isoformat(), "tz": "Europe/Berlin"},
    )
    assert response.status_code == 200
    page = text(response)
    assert "Speech and language therapy" in page  # the bio
    # 09:00 in New York is 15:00 in Berlin (both zones on summer or both on winter time, except
    # a few weeks a year: accept either offset).
    assert ">3:00 PM<" in page or ">2:00 PM<" in page or ">4:00 PM<" in page
    assert ">9:00 AM<" not in page.split('<li class="day', 2)[1]
    # The chosen zone sticks (session) and is offered in the picker, selected.
    again = text(client.get(f"/practitioners/{world.maya.pk}/"))
    assert '<option value="Europe/Berlin" selected>' in again


def test_practitioner_page_uses_the_browser_zone_cookie_and_links_slots_to_confirmation(world):
    client = ClinicClient(world.clinic)
    client.cookies["portal_tz"] = "America/New_York"
    day = f.next_weekday(2)
    response = client.get(
        f"/practitioners/{world.maya.pk}/", {"type": world.visit.pk, "from": day.isoformat()}
    )
    page = text(response)
    assert "(your browser&#x27;s time zone)" in page or "(your browser's time zone)" in page
    assert ">9:00 AM<" in page
    assert ">12:00 PM<" not in page  # the lunch gap: 12:00-13:00 is not working time
    link = page.split('class="slot" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    query = parse_qs(urlparse(link).query)
    assert query["practitioner"] == [str(world.maya.pk)]
    assert query["type"] == [str(world.visit.pk)]
    assert query["location"] == [str(world.location.pk)]
    assert query["start"][0].endswith("+00:00")


def test_a_booked_slot_disappears_from_the_week(world):
    day = f.next_weekday(3)
    with in_clinic(world.clinic):
        services.appointment_book(
            patient=world.patient, practitioner=world.maya, appointment_type=world.visit,
            start=f.local(day, 9),
        )  # fmt: skip
    client = ClinicClient(world.clinic)
    client.cookies["portal_tz"] = "America/New_York"
    page = text(
        client.get(
            f"/practitioners/{world.maya.pk}/", {"type": world.visit.pk, "from": day.isoformat()}
        )
    )
    first_day = page.split('<li class="day', 2)[1]
    assert ">9:00 AM<" not in first_day and ">9:45 AM<" in first_day


def test_an_empty_week_offers_the_next_free_day(world):
    with in_clinic(world.clinic):
        from scheduling.models import TimeOff

        now = timezone.now()
        TimeOff.objects.create(
            practitioner=world.maya, start=now - timedelta(days=1), end=now + timedelta(days=20)
        )
    page = text(ClinicClient(world.clinic).get(f"/practitioners/{world.maya.pk}/"))
    assert "No free times this week." in page
    assert "Jump to the next free day" in page


def test_unknown_practitioner_is_a_404_page(world):
    response = ClinicClient(world.clinic).get("/practitioners/999999/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert "We couldn&#x27;t find that page" in text(response) or "find that page" in text(response)


def test_unknown_url_is_a_friendly_404_page(world):
    response = ClinicClient(world.clinic).get("/no/such/page/")
    assert response.status_code == 404
    assert "find that page" in text(response)
    assert "Go to the home page" in text(response)


def test_a_server_error_is_a_friendly_500_page(world, monkeypatch):
    from portal import views

    def broken():
        raise RuntimeError("the database fell over")

    monkeypatch.setattr(views.practice_selectors, "specialty_list", broken)
    response = ClinicClient(world.clinic, raise_request_exception=False).get("/")
    assert response.status_code == 500
    page = text(response)
    assert "Sorry — something went wrong on our side" in page
    assert "Nothing you did caused this" in page
    assert "the database fell over" not in page and "Traceback" not in page


@pytest.mark.parametrize("url", ["/", "/practitioners/", "/signin/", "/signup/"])
def test_pages_are_responsive_and_load_local_assets_only(world, url):
    page = text(ClinicClient(world.clinic).get(url))
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "/static/portal/portal.css" in page and "/static/portal/portal.js" in page
    assert "https://" not in page.split("</head>", 1)[0]  # no CDN


def test_static_files_are_served_by_whitenoise(world):
    client = ClinicClient(world.clinic)
    for name in ("portal/portal.css", "portal/portal.js"):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200
        assert b"".join(response.streaming_content)


def test_directory_queries_do_not_grow_with_the_number_of_practitioners(world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = ClinicClient(world.clinic)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/practitioners/").status_code == 200
        return len(captured)

    queries()  # first request: clinic settings row created, caches filled
    two = queries()
    with in_clinic(world.clinic):
        for _ in range(6):
            extra = f.practitioner(specialties=(world.specialty,), at=world.location)
            world.visit.practitioners.add(extra)
    assert queries() == two

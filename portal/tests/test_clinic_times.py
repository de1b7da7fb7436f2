"""Clinic-true times on the patient pages: a Dublin patient on a New York laptop reads an
in-person Dún Laoghaire visit in Dublin time (it was "4:00 AM"), a video visit in their own
zone, both labelled, in the clinic's locale (24-hour clock and day-month in Ireland)."""

from datetime import datetime, time
from zoneinfo import ZoneInfo

from practice.models import ClinicSettings
from scheduling import services
from scheduling.tests import factories as f
from tests.fixtures import in_clinic

from .conftest import PASSWORD, signed_in

UTC = ZoneInfo("UTC")


def test_a_dublin_visit_reads_in_dublin_time_on_a_new_york_browser(globex, make_user):
    user = make_user(globex, "patient", email="aoife@example.com", password=PASSWORD)
    with in_clinic(globex):
        ClinicSettings.objects.update_or_create(id=1, defaults={"locale": "en-IE"})
        place = f.location("Dún Laoghaire", tz="Europe/Dublin")
        cardio = f.practitioner(tz="Europe/Dublin", at=place, hours=((time(8), time(18)),))
        kind = f.appointment_type(cardio, minutes=30)
        patient = f.patient(user=user, first="Aoife")
        day = f.next_weekday(1)
        in_person = services.appointment_book(
            patient=patient,
            practitioner=cardio,
            appointment_type=kind,
            start=datetime.combine(day, time(9), tzinfo=ZoneInfo("Europe/Dublin")),
            location=place,
        )
        video = services.appointment_book(
            patient=patient,
            practitioner=cardio,
            appointment_type=kind,
            start=datetime.combine(day, time(14), tzinfo=ZoneInfo("Europe/Dublin")),
            telehealth=True,
        )
    client = signed_in(globex, user)
    client.cookies["portal_tz"] = "America%2FNew_York"  # what portal.js writes

    # The abbreviations in force on the visit's day (GMT or IST, EST or EDT: the clock check
    # runs this around both zones' changes).
    dublin = f"Dublin time ({in_person.start.astimezone(ZoneInfo('Europe/Dublin')).tzname()})"
    on_laptop = video.start.astimezone(ZoneInfo("America/New_York"))
    new_york = f"New York time ({on_laptop.tzname()})"
    video_times = f"{on_laptop:%H:%M} – {on_laptop + (video.end - video.start):%H:%M}"

    listing = client.get("/appointments/").content.decode()
    assert "09:00" in listing and dublin in listing
    assert "4:00 AM" not in listing and "04:00 –" not in listing
    assert "09:00 – 09:30" in listing
    # the video visit in the viewer's zone (14:00 Dublin is 09:00 or 10:00 in New York), 24-hour
    assert new_york in listing and video_times in listing
    assert f"{day.day} {day:%b}" in listing  # day-month

    detail = client.get(f"/appointments/{in_person.pk}/").content.decode()
    assert "09:00 – 09:30" in detail and dublin in detail
    detail = client.get(f"/appointments/{video.pk}/").content.decode()
    assert video_times in detail and new_york in detail


def test_a_us_clinics_pages_write_month_day_and_a_twelve_hour_clock(world, patient_client):
    with in_clinic(world.clinic):
        start = datetime.combine(
            f.next_weekday(2), time(10, 15), tzinfo=ZoneInfo(world.location.timezone)
        )
        visit = services.appointment_book(
            patient=world.patient,
            practitioner=world.maya,
            appointment_type=world.visit,
            start=start,
            location=world.location,
        )
    page = patient_client.get(f"/appointments/{visit.pk}/").content.decode()
    assert "10:15 AM" in page
    assert f"{start:%B} {start.day}, {start.year}" in page  # month-day

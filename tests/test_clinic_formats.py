"""Dates, times and money the clinic's way (practice/formats.py): US patients read month-day
and a 12-hour clock, Irish ones day-month and a 24-hour clock; an in-person visit is written in
its location's zone, a video visit in the viewer's; admin titles never show UTC."""

from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from practice import formats
from practice.models import ClinicSettings
from practice.templatetags import clinic_formats
from scheduling import services
from scheduling.models import Appointment
from scheduling.tests import factories as f
from tests.fixtures import ClinicClient, in_clinic

UTC = ZoneInfo("UTC")
DUBLIN = ZoneInfo("Europe/Dublin")
NEW_YORK = ZoneInfo("America/New_York")
# 15:45 UTC on a December Tuesday: 10:45 in New York, 15:45 in Dublin (GMT).
MOMENT = datetime(2026, 12, 8, 15, 45, tzinfo=UTC)


def test_money_format_by_currency_and_locale():
    assert formats.money_format(Decimal("1234.5"), currency="USD", locale="en-US") == "$1,234.50"
    assert formats.money_format(Decimal("1234.5"), currency="EUR", locale="en-IE") == "€1,234.50"
    assert formats.money_format(Decimal("0"), currency="EUR", locale="en-IE") == "€0.00"
    # a foreign currency is named where the locale's own symbol would mislead
    assert formats.money_format(Decimal("10"), currency="USD", locale="en-IE") == "US$10.00"
    assert formats.money_format(Decimal("10"), currency="GBP", locale="en-GB") == "£10.00"


def test_us_dates_are_month_day_and_the_clock_twelve_hour():
    assert formats.date_format(MOMENT, locale="en-US", zone=NEW_YORK) == "Dec 8, 2026"
    assert formats.time_format(MOMENT, locale="en-US", zone=NEW_YORK) == "10:45 AM"
    assert formats.date_format(date(1990, 3, 4), style="short", locale="en-US") == "3/4/90"
    assert formats.datetime_format(MOMENT, locale="en-US", zone=NEW_YORK) == (
        "Dec 8, 2026, 10:45 AM"
    )


def test_irish_dates_are_day_month_and_the_clock_twenty_four_hour():
    assert formats.date_format(MOMENT, locale="en-IE", zone=DUBLIN) == "8 Dec 2026"
    assert formats.time_format(MOMENT, locale="en-IE", zone=DUBLIN) == "15:45"
    assert formats.date_format(date(1990, 3, 4), style="short", locale="en-IE") == "04/03/1990"
    assert formats.date_format(MOMENT, style="day", locale="en-IE", zone=DUBLIN) == "Tue, 8 Dec"
    assert formats.datetime_format(MOMENT, locale="en-GB", zone=DUBLIN) == "8 Dec 2026, 15:45"


def test_the_active_style_is_the_clinics_and_filters_follow_it():
    with formats.style_override(formats.Style(locale="en-IE", currency="EUR")):
        assert clinic_formats.clock(MOMENT, DUBLIN) == "15:45"
        assert clinic_formats.money(Decimal("80")) == "€80.00"
        assert clinic_formats.shortdate(date(2026, 12, 8)) == "8 Dec 2026"
    with formats.style_override(formats.Style()):
        assert clinic_formats.clock(MOMENT, "America/New_York") == "10:45 AM"
        assert clinic_formats.money(Decimal("80")) == "$80.00"
    assert clinic_formats.clock(None) == ""


def test_zone_label_names_the_place_and_the_abbreviation_in_force():
    assert formats.zone_label(MOMENT, DUBLIN) == "Dublin time (GMT)"
    assert formats.zone_label(datetime(2027, 7, 1, 12, tzinfo=UTC), DUBLIN) == "Dublin time (IST)"
    assert formats.zone_label(MOMENT, "America/New_York") == "New York time (EST)"


def _visit(clinic, *, location_zone: str, telehealth: bool = False) -> Appointment:
    with in_clinic(clinic):
        place = f.location("Dún Laoghaire", tz=location_zone)
        who = f.practitioner(tz=location_zone, at=place, hours=((time(0), time(23, 45)),))
        kind = f.appointment_type(who, minutes=30)
        patient = f.patient()
        start = datetime.combine(f.next_weekday(1), time(15, 45), tzinfo=UTC)
        return services.appointment_book(
            patient=patient,
            practitioner=who,
            appointment_type=kind,
            start=start,
            location=None if telehealth else place,
            telehealth=telehealth,
        )


def test_an_in_person_visit_is_in_its_locations_zone_and_a_video_visit_in_the_viewers(globex):
    in_person = _visit(globex, location_zone="Europe/Dublin")
    video = _visit(globex, location_zone="Europe/Dublin", telehealth=True)
    with in_clinic(globex):
        in_person = Appointment.objects.select_related("location").get(pk=in_person.pk)
        video = Appointment.objects.select_related("location").get(pk=video.pk)
    assert formats.visit_zone(in_person, NEW_YORK).key == "Europe/Dublin"
    assert formats.visit_zone(video, NEW_YORK).key == "America/New_York"
    assert formats.time_format(in_person.start, zone=formats.visit_zone(in_person, NEW_YORK)) == (
        "3:45 PM"
    )


def test_the_appointments_title_and_breadcrumb_never_show_utc(acme, make_user):
    """Staff read "… at 2026-12-08 15:45" (UTC) in the title while Start said 10:45 a.m."""
    visit = _visit(acme, location_zone="America/New_York")
    admin = make_user(acme, "front_desk")
    client = ClinicClient(acme)
    with in_clinic(acme):
        client.force_login(admin)
    page = client.get(f"/admin/scheduling/appointment/{visit.pk}/change/").content.decode()
    assert "10:45 AM" in page
    assert "15:45" not in page
    with in_clinic(acme), formats.style_override(formats.Style()):
        assert "10:45 AM" in str(visit)


@pytest.fixture
def irish(globex):
    with in_clinic(globex):
        ClinicSettings.objects.update_or_create(id=1, defaults={"locale": "en-IE"})
    return globex


def test_an_irish_clinics_admin_writes_dates_of_birth_day_month(irish, make_user):
    with in_clinic(irish):
        patient = f.patient()
        patient.date_of_birth = date(1990, 3, 4)
        patient.save()
    admin = make_user(irish, "clinic_admin")
    client = ClinicClient(irish)
    with in_clinic(irish):
        client.force_login(admin)
    listing = client.get("/admin/practice/patient/").content.decode()
    assert "4 Mar 1990" in listing
    form = client.get(f"/admin/practice/patient/{patient.pk}/change/").content.decode()
    assert 'value="04/03/1990"' in form
    # and a date typed the Irish way is read the Irish way
    assert "March 4, 1990" not in listing


def test_a_us_clinics_admin_writes_dates_of_birth_month_day(acme, make_user):
    with in_clinic(acme):
        patient = f.patient()
        patient.date_of_birth = date(1990, 3, 4)
        patient.save()
    admin = make_user(acme, "clinic_admin")
    client = ClinicClient(acme)
    with in_clinic(acme):
        client.force_login(admin)
    listing = client.get("/admin/practice/patient/").content.decode()
    assert "March 4, 1990" in listing


def _long_ie(day: date) -> str:  # CLDR en-IE: 'Wednesday 16 December 2026'
    return f"{day:%A} {day.day} {day:%B %Y}"


def test_an_irish_clinics_board_reads_day_month_and_the_twenty_four_hour_clock(irish, make_user):
    """The board wrote '%H:%M' and '%A %d %B %Y' whatever the clinic: now its locale's."""
    day = f.next_weekday(2, weeks_ahead=2)
    with in_clinic(irish):
        cardio = f.practitioner(name="Dr. Cian Murphy", tz="Europe/Dublin")
        kind = f.appointment_type(cardio, minutes=60)
        services.appointment_book(
            patient=f.patient(), practitioner=cardio, appointment_type=kind,
            start=f.local(day, 14, tz="Europe/Dublin"),
        )  # fmt: skip
    client = ClinicClient(irish)
    with in_clinic(irish):
        client.force_login(make_user(irish, "front_desk"))
    page = client.get("/admin/scheduling/board/", {"date": day.isoformat()}).content.decode()
    assert "14:00–15:00" in page and _long_ie(day) in page
    assert " PM" not in page.split('class="sb-day"')[1]  # hour lines and visits: 24-hour
    week = client.get("/admin/scheduling/board/", {"date": day.isoformat(), "view": "week"})
    assert f"{day:%a} <strong>{day.day} {day:%b}</strong>" in week.content.decode()


def test_refusals_write_dates_in_the_clinics_locale_even_through_the_api(irish, acme):
    """Messages said '07 Dec 2026' in every clinic; the API has no page style: the clinic's."""
    from scheduling.errors import BookingRefusedError
    from scheduling.models import Closure

    day = f.next_weekday(2, weeks_ahead=2)
    for clinic, expected in (
        (irish, _long_ie(day)),
        (acme, f"{day:%A}, {day:%B} {day.day}, {day.year}"),
    ):
        with in_clinic(clinic):
            practitioner = f.practitioner(tz=clinic.timezone)
            kind = f.appointment_type(practitioner, minutes=30)
            Closure.objects.create(name="Holiday", start_date=day, end_date=day)
            with pytest.raises(BookingRefusedError) as refused:
                services.appointment_book(
                    patient=f.patient(), practitioner=practitioner, appointment_type=kind,
                    start=f.local(day, 10, tz=clinic.timezone),
                )  # fmt: skip
            assert f"closed on {expected} (Holiday)" in refused.value.detail
            assert formats.message_date(day) == (
                f"{day.day} {day:%b %Y}" if clinic == irish else f"{day:%b} {day.day}, {day.year}"
            )

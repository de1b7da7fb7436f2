"""iCalendar output (the `icalendar` package): one visit's .ics and a practitioner's feed.

Times are written in UTC. Feeds leave out patient names: a subscribed calendar lives on
third-party servers, so it shows the visit type and the patient's initials only.
"""

from collections.abc import Iterable

from icalendar import Calendar, Event

from clinic.tenancy import tenant_connection

from .models import Appointment


def _calendar(name: str) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", "-//Clinic//Scheduling//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    return calendar


def _event(appointment: Appointment, *, summary: str, description: str) -> Event:
    event = Event()
    event.add("uid", f"{appointment.uid}@{tenant_connection.schema_name}.clinic")
    event.add("dtstamp", appointment.updated_at)
    event.add("dtstart", appointment.start)
    event.add("dtend", appointment.end)
    event.add("summary", summary)
    event.add("description", description)
    if appointment.is_telehealth and appointment.telehealth_url:
        event.add("location", appointment.telehealth_url)
        event.add("url", appointment.telehealth_url)
    elif (location := appointment.location) is not None:
        event.add("location", f"{location.name}, {location.address}")
    cancelled = appointment.status in (Appointment.Status.CANCELLED, Appointment.Status.NO_SHOW)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("sequence", appointment.reschedule_count)
    return event


def appointment_ics(appointment: Appointment) -> bytes:
    """The patient's copy of one visit."""
    calendar = _calendar(str(appointment.appointment_type.name))
    summary = f"{appointment.appointment_type.name} with {appointment.practitioner.display_name}"
    description = "Telehealth visit." if appointment.is_telehealth else "In-person visit."
    if appointment.telehealth_url:
        description += f" Join: {appointment.telehealth_url}"
    calendar.add_component(_event(appointment, summary=summary, description=description))
    return calendar.to_ical()


def practitioner_feed_ics(name: str, appointments: Iterable[Appointment]) -> bytes:
    calendar = _calendar(name)
    for appointment in appointments:
        patient = appointment.patient
        initials = f"{patient.first_name[:1]}{patient.last_name[:1]}".upper()
        summary = f"{appointment.appointment_type.name} – {initials}"
        calendar.add_component(
            _event(appointment, summary=summary, description=appointment.get_status_display())
        )
    return calendar.to_ical()

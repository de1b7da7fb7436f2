"""A notification's words: the clinic's template for its kind and channel (or the built-in
one), rendered in the clinic's language and formats (practice.formats), the visit written in
its own zone (its location's for an in-person visit), with the signed links."""

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.template import Context, Template
from django.utils import translation

from practice.formats import (
    DJANGO_LANGUAGES,
    Style,
    date_format,
    style_load,
    style_override,
    time_format,
    visit_zone,
    zone_label,
)
from practice.models import ClinicSettings
from scheduling.models import Appointment
from tenants.services import clinic_host

from .models import Channel, Kind, MessageTemplate

CONTEXT_HELP = (
    "patient (first name), clinic, visit_type, practitioner, date, time, zone, place, "
    "confirm_url, cancel_url, reschedule_url, phone; a waitlist offer: patient, clinic, "
    "visit_type, practitioner, date, time, zone, place, phone, until (the hold's end), "
    "offer_url (the signed page to book the time or let it go)"
)

_SUBJECTS = {
    Kind.CONFIRMATION: "Your visit on {{ date }} is booked",
    Kind.CHANGE: "Your visit moved to {{ date }} at {{ time }}",
    Kind.CANCELLATION: "Your visit on {{ date }} is cancelled",
    Kind.REMINDER: "Reminder: your visit on {{ date }} at {{ time }}",
}
_LEADS = {
    Kind.CONFIRMATION: "your {{ visit_type }} with {{ practitioner }} is booked for",
    Kind.CHANGE: "your {{ visit_type }} with {{ practitioner }} has moved to",
    Kind.CANCELLATION: "your {{ visit_type }} with {{ practitioner }} is cancelled. It was on",
    Kind.REMINDER: "a reminder of your {{ visit_type }} with {{ practitioner }} on",
}
_EMAIL = (
    "Hello {{ patient }},\n\n{lead} {{ date }} at {{ time }} ({{ zone }}), {{ place }}.\n"
    "{% if confirm_url %}\nConfirm: {{ confirm_url }}\nCancel: {{ cancel_url }}\n"
    "Reschedule: {{ reschedule_url }}\n{% endif %}"
    "\nQuestions? Call {{ clinic }} on {{ phone }}.\n"
)
_SMS = (
    "{{ clinic }}: {lead} {{ date }} {{ time }} ({{ zone }})."
    "{% if confirm_url %} Confirm {{ confirm_url }} Cancel {{ cancel_url }}{% endif %}"
)


# Kinds with wording of their own (not about a booked visit): subject, email body, SMS body.
_OWN = {
    Kind.WAITLIST_OFFER: (
        "An earlier visit is free: {{ date }} at {{ time }}",
        "Hello {{ patient }},\n\nA time has opened up at {{ clinic }} that matches your "
        "waitlist request:\n\n  {{ visit_type }} with {{ practitioner }}\n"
        "  {{ date }} at {{ time }} ({{ zone }}), {{ place }}\n\n"
        "We are holding it for you until {{ until }}. To book it, or to let it go to the next "
        "person:\n\n  {{ offer_url }}\n\n"
        "If you do nothing, it passes to the next patient on the waitlist then, and you stay on "
        "the waitlist for another time.\n\nQuestions? Call {{ clinic }} on {{ phone }}.\n",
        "{{ clinic }}: a {{ visit_type }} with {{ practitioner }} is free on {{ date }} "
        "{{ time }} ({{ zone }}), held for you until {{ until }}. Book it or let it go: "
        "{{ offer_url }}",
    ),
}


def default_template(kind: str, channel: str) -> tuple[str, str]:
    """(subject, body) of the built-in wording."""
    if (own := _OWN.get(Kind(kind))) is not None:
        subject, email, sms = own
        return (subject, email) if channel == Channel.EMAIL else ("", sms)
    lead = _LEADS[Kind(kind)]
    body = (_EMAIL if channel == Channel.EMAIL else _SMS).replace("{lead}", lead)
    return (_SUBJECTS[Kind(kind)] if channel == Channel.EMAIL else ""), body


def template_for(kind: str, channel: str) -> tuple[str, str]:
    own = MessageTemplate.objects.filter(kind=kind, channel=channel).first()
    return (own.subject, own.body) if own is not None else default_template(kind, channel)


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


_UNREAD = ClinicSettings()  # marks "not read yet" (a batch passes the row it read)


def visit_context(
    appointment: Appointment,
    *,
    start: datetime,
    links: dict[str, str],
    locale: str,
    clinic_settings: ClinicSettings | None = _UNREAD,
) -> dict:
    """What a template reads: the visit written in its zone and the clinic's formats."""
    tenant = getattr(connection, "tenant", None)
    base_url = f"{settings.NOTIFICATION_LINK_SCHEME}://{clinic_host(getattr(tenant, 'slug', ''))}"
    settings_row = (
        ClinicSettings.objects.filter(id=1).first()
        if clinic_settings is _UNREAD
        else clinic_settings
    )
    clinic_zone = getattr(tenant, "timezone", "") or "UTC"
    zone = visit_zone(appointment, viewer=ZoneInfo(clinic_zone))
    location = appointment.location
    place = (
        "by video"
        if appointment.is_telehealth
        else (f"at {location.name}" if location is not None else "at the clinic")
    )
    phone = (location.phone if location is not None and location.phone else "") or (
        settings_row.phone if settings_row else ""
    )
    return {
        "patient": appointment.patient.first_name,
        "clinic": getattr(tenant, "name", "") or "the clinic",
        "visit_type": appointment.appointment_type.name,
        "practitioner": appointment.practitioner.display_name,
        "date": date_format(start, style="long", zone=zone, locale=locale),
        "time": time_format(start, zone=zone, locale=locale),
        "zone": zone_label(start, zone),
        "place": place,
        "phone": phone or "the clinic",
        **{f"{action}_url": base_url + path for action, path in links.items()},
    }


def render(
    *,
    kind: str,
    channel: str,
    context: dict,
    template: tuple[str, str] | None = None,
    style: Style | None = None,
) -> Rendered:
    """Render in the clinic's language and formats (the schema must be set; `style`, if read
    already: a batch's)."""
    style = style or style_load()
    subject, body = template or template_for(kind, channel)
    with style_override(style), translation.override(DJANGO_LANGUAGES.get(style.locale, "en")):
        ctx = Context(context, autoescape=False)
        return Rendered(
            subject=" ".join(_compiled(subject).render(ctx).split()),
            body=_compiled(body).render(ctx).strip(),
        )


@lru_cache(maxsize=512)
def _compiled(source: str) -> Template:
    """A template's source compiled once per process (an edited template is another source);
    compiling was a tenth of a reminder's cost when every message compiled its own."""
    return Template(source)

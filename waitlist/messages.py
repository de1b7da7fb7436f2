"""The offer's message is a notification of its own kind (`waitlist_offer`): its rows are
written in the hold's transaction (`services._hold`, through `notifications.planning`) and
sent after commit by the notifications sender on the patient's channels (email and SMS,
opt-outs kept), worded by the clinic's template or the built-in one. notifications imports no
app above it, so the waitlist registers here what the sender asks of an offer's row (its
`about` is `waitlist_offer:<id>`): whether the hold still stands, and the template's context
(the offered time in the practitioner's zone and the clinic's formats, how long it is held,
the signed link to book it or let it go, links.py)."""

from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings

from clinic.tenancy import tenant_connection
from notifications.models import Kind, Notification
from notifications.subjects import Subject
from practice import formats
from practice.models import ClinicSettings
from tenants.services import clinic_host

from .links import offer_link_path
from .models import WaitlistOffer

PREFIX = "waitlist_offer:"


def offer_about(offer: WaitlistOffer) -> str:
    """What an offer's notification rows name in `about`."""
    return f"{PREFIX}{offer.pk}"


def _offer(row: Notification) -> WaitlistOffer | None:
    if not row.about.startswith(PREFIX):
        return None
    return (
        WaitlistOffer.objects.select_related(
            "patient", "practitioner", "appointment_type", "location"
        )
        .filter(pk=int(row.about.removeprefix(PREFIX) or 0))
        .first()
    )


def offer_notice_check(row: Notification, now: datetime) -> str:
    """Why the offer's message is not sent now ("" when the hold still stands)."""
    offer = _offer(row)
    if offer is None:
        return "The offer no longer exists."
    if offer.status != WaitlistOffer.Status.HELD:
        return f"The offer was {offer.get_status_display().lower()} before its message went out."
    if offer.expires_at <= now:
        return "The hold expired before its message went out."
    return ""


def offer_notice_context(row: Notification, now: datetime) -> dict:
    """What the offer's template reads (notifications.rendering.CONTEXT_HELP)."""
    offer = _offer(row)
    assert offer is not None  # checked just before
    tenant = tenant_connection.tenant
    zone = ZoneInfo(offer.practitioner.timezone)
    locale = formats.style_load().locale
    base = f"{settings.NOTIFICATION_LINK_SCHEME}://{clinic_host(getattr(tenant, 'slug', ''))}"
    location = offer.location
    clinic_settings = ClinicSettings.objects.filter(id=1).first()
    phone = (location.phone if location is not None and location.phone else "") or (
        clinic_settings.phone if clinic_settings else ""
    )
    return {
        "patient": offer.patient.first_name,
        "clinic": getattr(tenant, "name", "") or "the clinic",
        "visit_type": offer.appointment_type.name,
        "practitioner": offer.practitioner.display_name,
        "date": formats.date_format(offer.start, style="long", zone=zone, locale=locale),
        "time": formats.time_format(offer.start, zone=zone, locale=locale),
        "zone": formats.zone_label(offer.start, zone),
        "place": f"at {location.name}" if location is not None else "at the clinic",
        "phone": phone or "the clinic",
        "until": formats.datetime_format(offer.expires_at, zone=zone, locale=locale),
        "offer_url": base + offer_link_path(offer),
    }


OFFER_SUBJECT = Subject(
    kind=Kind.WAITLIST_OFFER, check=offer_notice_check, context=offer_notice_context
)

"""The offer's message: an email to the patient with the time, how long it is held, and the
signed accept / decline links (links.py), in the clinic's formats and the practitioner's zone.
Sent by a task after the hold commits; a provider's refusal retries."""

from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string

from clinic.tenancy import tenant_connection
from practice import formats
from tenants.services import clinic_host

from .links import offer_link_path
from .models import WaitlistOffer


class OfferMessageError(Exception):
    """The mail server did not take the message; the task retries."""


def offer_message_send(*, offer_id: int) -> str:
    """Send the offer's email if the hold is still open; returns what happened."""
    offer = (
        WaitlistOffer.objects.select_related("patient", "practitioner", "appointment_type")
        .filter(pk=offer_id)
        .first()
    )
    if offer is None or offer.status != WaitlistOffer.Status.HELD:
        return "closed"
    patient = offer.patient
    if not patient.email:
        return "no-email"
    tenant = tenant_connection.tenant
    zone = ZoneInfo(offer.practitioner.timezone)
    base = f"{settings.NOTIFICATION_LINK_SCHEME}://{clinic_host(getattr(tenant, 'slug', ''))}"
    with formats.style_override(formats.style_load()):
        context = {
            "patient": patient.first_name,
            "clinic": getattr(tenant, "name", "") or "the clinic",
            "visit_type": offer.appointment_type.name,
            "practitioner": offer.practitioner.display_name,
            "when": formats.datetime_format(offer.start, zone=zone),
            "zone": offer.start.astimezone(zone).tzname(),
            "until": formats.datetime_format(offer.expires_at, zone=zone),
            "link": base + offer_link_path(offer),
        }
        subject = f"An earlier visit is free: {context['when']}"
        body = render_to_string("notifications/waitlist_offer.txt", context)
    email = EmailMessage(
        subject=subject,
        body=body,
        to=[patient.email],
        headers={
            "Message-ID": f"<waitlist-offer-{offer.pk}@{tenant_connection.schema_name}.clinic>"
        },
    )
    try:
        email.send()
    except OSError as error:
        raise OfferMessageError(str(error)) from error
    return "sent"

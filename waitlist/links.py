"""Signed links in an offer's message: accept or decline one offer.

The token is `django.core.signing` over (the clinic's schema, the offer's id), salted for this
use: a changed character is a bad signature, a token from another clinic names another schema.
The offer's own status makes the link single-use (accepting or declining ends the hold) and its
`expires_at` makes it expire; each case explains itself on the page."""

from django.core import signing
from django.urls import reverse

from clinic.tenancy import tenant_connection

from .models import WaitlistOffer

SALT = "waitlist.offer-link"


class OfferLinkProblem(Exception):
    """Why a link does nothing: `code` for the page, `message` for the patient."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def offer_token(offer: WaitlistOffer) -> str:
    return signing.dumps(
        {"s": tenant_connection.schema_name, "o": offer.pk}, salt=SALT, compress=False
    )


def offer_link_path(offer: WaitlistOffer) -> str:
    return reverse("waitlist-offer-link", kwargs={"token": offer_token(offer)})


def offer_for_token(token: str) -> WaitlistOffer:
    """The offer a token names (whatever its status); OfferLinkProblem if the token is not
    one of ours for this clinic."""
    try:
        claims = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise OfferLinkProblem(
            "tampered", "This link is not one we sent: it was changed or cut short."
        ) from None
    if not isinstance(claims, dict) or claims.get("s") != tenant_connection.schema_name:
        raise OfferLinkProblem("other-clinic", "This link belongs to another clinic's site.")
    offer = (
        WaitlistOffer.objects.select_related(
            "patient", "practitioner", "appointment_type", "location"
        )
        .filter(pk=int(claims.get("o") or 0))
        .first()
    )
    if offer is None:
        raise OfferLinkProblem("unknown", "This offer no longer exists.")
    return offer

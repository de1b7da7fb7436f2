"""The page an offer's signed link opens (routed in clinic.urls_tenants): GET shows the offer
(mail scanners follow links, so nothing happens on GET), POST accepts or declines it. A used,
expired, changed or foreign link explains itself on the same page."""

from zoneinfo import ZoneInfo

from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from clinic.errors import ApplicationError

from . import services
from .links import OfferLinkProblem, offer_for_token
from .models import WaitlistOffer


def _problem(request, problem: OfferLinkProblem, status: int):
    return render(request, "notifications/waitlist_offer.html", {"problem": problem}, status=status)


@require_http_methods(["GET", "POST"])
def offer_link_page(request, token: str):
    now = timezone.now()
    try:
        offer = offer_for_token(token)
    except OfferLinkProblem as problem:
        return _problem(request, problem, 400)
    if offer.status != WaitlistOffer.Status.HELD or offer.expires_at <= now:
        message = {
            "accepted": "You accepted this offer already: the visit is booked.",
            "declined": "You declined this offer; it went to the next patient.",
            "withdrawn": "This offer was withdrawn.",
        }.get(offer.status, "This offer has expired; the time went to the next patient.")
        return _problem(request, OfferLinkProblem(offer.status, message), 410)
    done = ""
    appointment = None
    if request.method == "POST":
        choice = request.POST.get("choice")
        try:
            if choice == "accept":
                appointment = services.offer_accept(offer=offer, now=now)
                done = "accepted"
            elif choice == "decline":
                services.offer_decline(offer=offer, now=now)
                done = "declined"
            else:
                return _problem(
                    request, OfferLinkProblem("choice", "Choose accept or decline."), 400
                )
        except ApplicationError as error:
            return _problem(request, OfferLinkProblem("refused", str(error.detail)), 409)
    return render(
        request,
        "notifications/waitlist_offer.html",
        {
            "offer": offer,
            "done": done,
            "appointment": appointment,
            "zone": ZoneInfo(offer.practitioner.timezone),
        },
    )

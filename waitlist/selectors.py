"""Waitlist reads shared by the API, the admin, the board and the patient pages."""

from collections.abc import Sequence
from datetime import datetime

from django.db.models import QuerySet

from .models import WaitlistEntry, WaitlistOffer


def entry_list() -> QuerySet[WaitlistEntry]:
    return WaitlistEntry.objects.select_related(
        "patient", "practitioner", "specialty", "appointment_type"
    )


def offer_list() -> QuerySet[WaitlistOffer]:
    return WaitlistOffer.objects.select_related(
        "patient", "practitioner", "appointment_type", "entry"
    )


def offers_held_between(start, end) -> QuerySet[WaitlistOffer]:
    """Holds in force over [start, end): what the schedule board shows as held slots."""
    return WaitlistOffer.objects.filter(
        status=WaitlistOffer.Status.HELD, start__lt=end, end__gt=start
    ).select_related("patient", "appointment_type")


def patient_offers_open(patient) -> QuerySet[WaitlistOffer]:
    return offer_list().filter(patient=patient, status=WaitlistOffer.Status.HELD)


def holds_busy(
    practitioner_ids: Sequence[int], lo: datetime, hi: datetime
) -> list[tuple[int, datetime, datetime]]:
    """Held slots of `practitioner_ids` overlapping [lo, hi) whose hold has not expired: what
    availability leaves out (registered with scheduling.busy in the app's ready())."""
    from django.utils import timezone

    rows = WaitlistOffer.objects.filter(
        status=WaitlistOffer.Status.HELD,
        practitioner_id__in=practitioner_ids,
        expires_at__gt=timezone.now(),
        blocked__overlap=(lo, hi),
    ).values_list("practitioner_id", "blocked")
    return [(practitioner_id, blocked.lower, blocked.upper) for practitioner_id, blocked in rows]

"""Waitlist reads shared by the API, the admin, the board and the patient pages."""

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


# Held slots whose hold has not expired, overlapping the window: what availability leaves out
# (a `scheduling.busy` source, registered in the app's ready(); run in availability's round
# trip, with its parameters, which keeps the rows of the practitioners it asks about).
HOLDS_BUSY_SQL = f"""
SELECT practitioner_id, lower(blocked), upper(blocked)
  FROM {WaitlistOffer._meta.db_table}
 WHERE status = '{WaitlistOffer.Status.HELD.value}' AND expires_at > %(clock)s
   AND blocked && tstzrange(%(lo)s, %(hi)s, '[)')
"""  # noqa: S608 (no input in it: the table and the status are the model's)

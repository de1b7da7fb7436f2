"""Signed links in messages: confirm, cancel or reschedule one visit.

The token is `django.core.signing` over (the clinic's schema, the link's id), salted for this
use: a changed character is a bad signature, and a link signed in another clinic names another
schema. The link's row makes it single-use and expiring: `action_link_use` marks it used with
one conditional UPDATE (`used_at IS NULL AND expires_at > now`), in the transaction of the
action it performs, so two clicks perform it once. A link also names the visit's start: a
visit moved since has new links, and the old ones say so.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from clinic.errors import ApplicationError
from clinic.tenancy import tenant_connection
from scheduling import services as scheduling
from scheduling import states
from scheduling.models import Appointment

from .models import ActionLink

SALT = "notifications.action-link"


class LinkProblem(Exception):
    """Why a link does nothing: `code` for the page, `message` for the patient."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def action_links_create(*, appointment: Appointment, now: datetime) -> dict[str, str]:
    """One link per action for the visit at its current start; returns action -> path."""
    expires = min(appointment.start, now + timedelta(hours=settings.NOTIFICATION_LINK_HOURS))
    links = ActionLink.objects.bulk_create(
        ActionLink(
            appointment=appointment, action=action, start=appointment.start, expires_at=expires
        )
        for action in ActionLink.Action.values
    )
    return {link.action: action_link_path(link) for link in links}


def action_links_create_many(
    *, appointments: list[Appointment], now: datetime
) -> dict[int, dict[str, str]]:
    """`action_links_create` for several visits in one INSERT (a batch of messages; a visit
    with two messages in the batch gets one set of links per message, the last wins in the
    answer). Returns appointment id -> action -> path."""
    made = ActionLink.objects.bulk_create(
        ActionLink(
            appointment=appointment,
            action=action,
            start=appointment.start,
            expires_at=min(
                appointment.start, now + timedelta(hours=settings.NOTIFICATION_LINK_HOURS)
            ),
        )
        for appointment in appointments
        for action in ActionLink.Action.values
    )
    out: dict[int, dict[str, str]] = {}
    for link in made:
        out.setdefault(link.appointment_id, {})[link.action] = action_link_path(link)
    return out


def action_link_token(link: ActionLink) -> str:
    return signing.dumps(
        {"s": tenant_connection.schema_name, "l": str(link.pk)}, salt=SALT, compress=False
    )


def action_link_path(link: ActionLink) -> str:
    return reverse("notification-link", kwargs={"token": action_link_token(link)})


@dataclass(frozen=True)
class Checked:
    link: ActionLink
    appointment: Appointment


def action_link_check(*, token: str, now: datetime) -> Checked:
    """The link a token names, if it still does something; else LinkProblem saying why."""
    try:
        claims = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise LinkProblem(
            "tampered", "This link is not one we sent: it was changed or cut short."
        ) from None
    if not isinstance(claims, dict) or claims.get("s") != tenant_connection.schema_name:
        raise LinkProblem("other-clinic", "This link belongs to another clinic's site.")
    link = (
        ActionLink.objects.select_related(
            "appointment__practitioner", "appointment__appointment_type", "appointment__location"
        )
        .filter(pk=str(claims.get("l")))
        .first()
    )
    if link is None:
        raise LinkProblem("unknown", "This link is no longer valid.")
    appointment = link.appointment
    if link.used_at is not None:
        raise LinkProblem("used", "This link was used already; each link works once.")
    if link.expires_at <= now:
        raise LinkProblem("expired", "This link has expired. Please contact the clinic or sign in.")
    if appointment.status != Appointment.Status.BOOKED:
        raise LinkProblem("closed", "This visit can no longer be changed from a link.")
    if appointment.start != link.start:
        raise LinkProblem(
            "moved", "This visit was moved since we sent this link; use the newest message."
        )
    return Checked(link=link, appointment=appointment)


@transaction.atomic
def action_link_use(*, token: str, now: datetime | None = None) -> Checked:
    """Perform the link's action once: confirm (recorded on the link), cancel (scheduling's
    cancel, by the patient's account and under its late-change rule), reschedule (marked used;
    the patient picks the new time on the patient pages). Raises LinkProblem."""
    now = now or timezone.now()
    checked = action_link_check(token=token, now=now)
    taken = ActionLink.objects.filter(
        pk=checked.link.pk, used_at__isnull=True, expires_at__gt=now
    ).update(used_at=now)
    if not taken:
        raise LinkProblem("used", "This link was used already; each link works once.")
    if checked.link.action == ActionLink.Action.CANCEL:
        appointment = checked.appointment
        if states.is_late(appointment, now):
            raise LinkProblem("late", "It is too late to cancel online; please call the clinic.")
        try:
            scheduling.appointment_cancel(
                appointment=appointment,
                by=appointment.patient.user,
                reason="Cancelled from a link.",
                now=now,
            )
        except ApplicationError as error:
            raise LinkProblem("refused", str(error)) from error
    return checked

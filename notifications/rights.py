"""notifications' part of a patient's data rights (practice/rights.py).

Export: every message the clinic sent or planned about the patient's visits (kind, channel,
status, the visit and its start, when it was due and sent, attempts, the address it went to,
the provider's id, why it was skipped or failed) and their channel opt-outs.

Erasure keeps the delivery facts the clinic must be able to show (that a visit's confirmation,
reminders and notices were sent, on which channel, when, how many attempts and the provider's
message id: what answers "was the patient told?" in a dispute about a fee or a missed visit)
and removes what identifies the patient: the address each message went to and the reasons of
failed sends (a provider's refusal may quote the address). Message bodies are never stored
(each is rendered when sent), so there is nothing more to blank. Messages still pending are
skipped (the cancellation notices the erasure's own cancels just wrote included: they would
go to an address that no longer exists), the visits' signed links stop working, and the
opt-outs are deleted (an erased record receives nothing).
"""

from django.db.models import Q

from practice.models import Patient
from practice.rights import ExportContext, PatientDataPart, Row

from .models import ActionLink, ChannelOptOut, Notification

Status = Notification.Status
ERASED_REASON = "Patient data erased."


def _notification_rows(patient: Patient, context: ExportContext) -> list[Row]:
    rows = Notification.objects.filter(patient=patient).order_by("due_at", "id")
    return [
        {
            "id": row.pk,
            "uid": str(row.uid),
            "appointment": row.appointment_id,
            "about": row.about,
            "kind": row.kind,
            "channel": row.channel,
            "status": row.status,
            "visit_start": context.time(row.start),
            "due_at": context.time(row.due_at),
            "sent_at": context.time(row.sent_at),
            "attempts": row.attempts,
            "recipient": row.recipient,
            "provider_id": row.provider_id,
            "reason": row.reason,
            "created_at": context.time(row.created_at),
        }
        for row in rows
    ]


def _opt_out_rows(patient: Patient, context: ExportContext) -> list[Row]:
    rows = ChannelOptOut.objects.filter(patient=patient).order_by("channel")
    return [{"channel": row.channel, "created_at": context.time(row.created_at)} for row in rows]


def _erase(patient: Patient, *, by, now) -> dict[str, int]:
    """Skip what is still to be sent, empty addresses and failure reasons, end the links."""
    rows = Notification.objects.filter(patient=patient)
    skipped = rows.filter(status__in=(Status.PENDING, Status.SENDING)).update(
        status=Status.SKIPPED, reason=ERASED_REASON, claim=None, recipient=""
    )
    anonymised = rows.filter(~Q(recipient="") | (Q(status=Status.FAILED) & ~Q(reason=""))).update(
        recipient="", reason=""
    )
    rows.filter(status=Status.FAILED).update(reason=ERASED_REASON)
    links = ActionLink.objects.filter(
        appointment__patient=patient, used_at__isnull=True, expires_at__gt=now
    ).update(expires_at=now)
    opt_outs, _ = ChannelOptOut.objects.filter(patient=patient).delete()
    return {
        "notifications_skipped": skipped,
        "notifications_anonymised": anonymised,
        "notifications_kept": rows.count(),
        "notification_links_ended": links,
        "notification_opt_outs_deleted": opt_outs,
    }


PART = PatientDataPart(
    name="notifications",
    title="Messages about visits",
    export=_notification_rows,
    columns=(
        ("due_at", "When"),
        ("kind", "What"),
        ("channel", "How"),
        ("status", "Status"),
    ),
    erase=_erase,
)

OPT_OUTS_PART = PatientDataPart(
    name="notification_opt_outs",
    title="Channels opted out of",
    export=_opt_out_rows,
    columns=(("channel", "Channel"), ("created_at", "Since")),
)

"""Receivers of the domain apps' signals (scheduling/signals.py, authorizations/signals.py,
billing/signals.py), in the change's transaction: each change becomes events carrying the
resource as the API serializes it, ordered per appointment (or job, authorization, claim).
Connected in `WebhooksConfig.ready`. The resource is read and serialized only when the clinic
has a subscription to the type (`events_emit` calls the builder then)."""

from typing import Any

from django.db.models import Count, Prefetch, Q

from .events import EVENT_TYPES
from .models import WebhookEvent
from .services import events_emit

# scheduling.signals.appointment_changed's kinds -> event types
APPOINTMENT_KINDS = {
    "booked": "appointment.booked",
    "rescheduled": "appointment.changed",
    "cancelled": "appointment.cancelled",
    "checked_in": "appointment.checked_in",
    "completed": "appointment.completed",
    "no_show": "appointment.no_show",
}


def appointment_data(appointment) -> dict[str, Any]:
    """The visit as `GET /api/v1/appointments/{id}/` shows it to a reader who is not staff
    (the staff's notes and who booked it stay in the clinic)."""
    from scheduling.api.serializers import AppointmentSerializer

    return dict(AppointmentSerializer(appointment, context={}).data)


def on_appointment_changed(sender, *, appointment, kind: str, by=None, data=None, **kwargs) -> None:
    if type_ := APPOINTMENT_KINDS.get(kind):
        events_emit(
            type=type_,
            items=lambda: [(appointment_data(appointment), f"appointment:{appointment.pk}")],
        )


def on_smart_booking_finished(sender, *, job, **kwargs) -> None:
    from scheduling.smart.job import job_payload

    status = "completed" if job.status == "completed" else "failed"
    events_emit(
        type=f"smart_booking.{status}",
        items=lambda: [(job_payload(job, staff=False), f"smart_booking:{job.pk}")],
    )


def _authorization_data(authorization_id: int) -> dict[str, Any]:
    from authorizations.api.serializers import AuthorizationSerializer
    from authorizations.selectors import authorization_list

    authorization = authorization_list().get(pk=authorization_id)
    return dict(AuthorizationSerializer(authorization, context={}).data)


def on_authorization_threshold_reached(
    sender, *, authorization_id: int, line_id: int, percent_used: float, **kwargs
) -> None:
    def items():
        data = {**_authorization_data(authorization_id), "line": line_id}
        data["percent_used"] = percent_used
        return [(data, f"authorization:{authorization_id}")]

    events_emit(type="authorization.threshold_reached", items=items)


def on_authorization_expiring(sender, *, authorization_id: int, days_left: int, **kwargs) -> None:
    """Once per authorization: the daily alerts send it every day of the window."""
    key = f"authorization:{authorization_id}"
    type_ = "authorization.expiring"

    def items():
        if WebhookEvent.objects.filter(type=type_, ordering_key=key).exists():
            return []
        return [({**_authorization_data(authorization_id), "days_left": days_left}, key)]

    events_emit(type=type_, items=items)


def on_claims_status_changed(sender, *, claim_ids: list[int], status: str, **kwargs) -> None:
    type_ = f"claim.{status}"
    if type_ not in EVENT_TYPES:
        return  # appealed, replaced, voided: no event (yet)

    def items():
        from billing.api.claims import ClaimSerializer
        from billing.claims import claim_list

        claims = claim_list().filter(pk__in=claim_ids).order_by("pk")
        return [(dict(ClaimSerializer(claim).data), f"claim:{claim.pk}") for claim in claims]

    events_emit(type=type_, items=items)


def on_remittance_posted(sender, *, remittance_id: int, **kwargs) -> None:
    def items():
        from billing.api.money import RemittanceSerializer
        from billing.models import Remittance, RemittanceClaim

        remittance = (
            Remittance.objects.annotate(
                unmatched=Count("claims", filter=Q(claims__claim__isnull=True))
            )
            .prefetch_related(
                Prefetch("claims", RemittanceClaim.objects.select_related("claim").order_by("id"))
            )
            .get(pk=remittance_id)
        )
        return [(dict(RemittanceSerializer(remittance).data), f"remittance:{remittance_id}")]

    events_emit(type="remittance.posted", items=items)

"""The events beyond a visit's: smart booking's end, an authorization reaching its threshold or
expiring, billing's claim statuses and a posted 835, each written in its change's transaction
with the resource as the API shows it, and received signed, in order per claim."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from authorizations import services as ledger
from authorizations.tests import factories as af
from billing.posting import remittance_post
from billing.tests.remit import Pay, paying, submitted_claim
from scheduling.models import SmartBookingJob
from scheduling.tests import factories as f
from tests.fixtures import in_clinic
from webhooks import delivery as sending
from webhooks.models import WebhookDelivery, WebhookEvent

from .factories import subscribe


def _types() -> list[tuple[str, str]]:
    return list(
        WebhookEvent.objects.order_by("created_at", "pk").values_list("type", "ordering_key")
    )


def test_an_authorization_line_crossing_its_threshold_is_one_event(acme, receiver):
    with in_clinic(acme):
        subscribe(receiver, "/auth", events=["authorization.threshold_reached"])
        code = f.service_code()
        authorization, line = af.authorization(f.patient(), code, units=10, threshold=80)
        day = timezone.localdate()
        for units in (4, 3):  # 40 %, 70 %: below
            ledger.units_reserve(line=line, units=units, service_date=day)
        assert not WebhookEvent.objects.exists()
        ledger.units_reserve(line=line, units=2, service_date=day)  # 90 %: crossed
        ledger.units_reserve(line=line, units=1, service_date=day)  # 100 %: already over
        [event] = WebhookEvent.objects.all()
        assert event.ordering_key == f"authorization:{authorization.pk}"
        assert event.data["id"] == authorization.pk and event.data["percent_used"] == 90.0
        assert event.data["line"] == line.pk and "notes" not in event.data


def test_an_expiring_authorization_is_one_event_however_many_daily_alerts(acme, receiver):
    with in_clinic(acme):
        subscribe(receiver, "/expiring", events=["authorization.expiring"])
        today = timezone.localdate()
        authorization, _ = af.authorization(
            f.patient(), f.service_code(), end=today + timedelta(days=10)
        )
        ledger.authorization_alerts_send(clinic_name="Acme", today=today)
        ledger.authorization_alerts_send(clinic_name="Acme", today=today + timedelta(days=1))
        [event] = WebhookEvent.objects.all()
        assert (event.type, event.data["id"], event.data["days_left"]) == (
            "authorization.expiring", authorization.pk, 10,
        )  # fmt: skip


def test_a_smart_bookings_end_is_an_event(acme, receiver):
    from scheduling.smart.job import _fail

    with in_clinic(acme):
        subscribe(receiver, "/smart", events=["smart_booking.failed", "smart_booking.completed"])
        job = SmartBookingJob.objects.create(patient=f.patient(), request={})
        _fail(job.pk, "Nothing free in the window.", need_for_options=job)
        [event] = WebhookEvent.objects.all()
        assert (event.type, event.ordering_key) == (
            "smart_booking.failed",
            f"smart_booking:{job.pk}",
        )
        assert event.data["error_message"] == "Nothing free in the window."
        assert "worker_id" not in event.data


def test_a_submitted_claim_is_an_event(acme, receiver):
    from billing import claims as services
    from billing.tests import factories as bf

    with in_clinic(acme):
        subscribe(receiver, "/submitted", events=["claim.submitted"])
        bf.billing_profile()
        made = bf.charge(bf.billable_visit())
        [claim] = services.claims_build(charges=[made.pk])
        claim = services.claim_scrub(claim=claim)
        assert not WebhookEvent.objects.exists()  # a draft or ready claim is no event
        services.claims_submit(claims=[claim])
        [event] = WebhookEvent.objects.all()
        assert (event.type, event.data["id"], event.data["status"]) == (
            "claim.submitted", claim.pk, "submitted",
        )  # fmt: skip
        assert event.data["submission"] is not None


def test_a_claims_payment_and_its_835_are_events_received_in_order(acme, receiver):
    with in_clinic(acme):
        subscribe(
            receiver, "/billing", events=["claim.submitted", "claim.paid", "remittance.posted"]
        )
        claim = submitted_claim()
        with transaction.atomic():
            result = remittance_post(
                text=paying(claim, [Pay("160.00", (("CO", "45", "20.00"), ("PR", "2", "20.00")))])
            )
        [remittance] = result.remittances
        assert _types() == [
            ("claim.paid", f"claim:{claim.pk}"),
            ("remittance.posted", f"remittance:{remittance.pk}"),
        ]
        paid = WebhookEvent.objects.get(type="claim.paid")
        assert paid.data["id"] == claim.pk and paid.data["status"] == "paid"
        posted = WebhookEvent.objects.get(type="remittance.posted")
        assert posted.data["trace_number"] == remittance.trace_number
        assert [c["claim"] for c in posted.data["claims"]] == [claim.pk]
        for row in WebhookDelivery.objects.order_by("pk"):
            assert sending.delivery_send(delivery_id=row.pk) == "succeeded"
    assert [r.event["type"] for r in receiver.accepted()] == ["claim.paid", "remittance.posted"]
    assert all(r.signed for r in receiver.received)

"""The waitlist's rules against the real database: who is offered a freed slot and in what
order, what a hold refuses and for how long, and what accepting, declining and expiry do."""

from datetime import datetime, time, timedelta

import pytest
import time_machine

from clinic.errors import constraint_name_in_message
from scheduling import services as scheduling
from scheduling.errors import SlotUnavailableError
from scheduling.models import Appointment
from scheduling.selectors import appointments_overlapping
from scheduling.tests import factories as f
from tests.fixtures import in_clinic
from webhooks import delivery as sending
from webhooks.events import WAITLIST_EVENTS
from webhooks.models import WebhookDelivery, WebhookEvent
from webhooks.tests.factories import subscribe
from webhooks.tests.receiver import Receiver
from webhooks.tests.receiver import start as start_receiver
from webhooks.tests.receiver import stop as stop_receiver

from .. import services
from ..api.serializers import WaitlistOfferSerializer
from ..errors import EntryRefusedError, OfferClosedError
from ..models import WaitlistEntry, WaitlistOffer
from .factories import waiting_world


def _cancel_and_offer(world) -> WaitlistOffer | None:
    """Cancel the world's visit and offer the time it frees, as the task does after commit."""
    cancelled = scheduling.appointment_cancel(appointment=world.visit, reason="Sick")
    slot = services.freed_slot_of(cancelled, "cancelled", {})
    assert slot is not None
    return services.slot_offer(slot=slot)


def test_a_cancelled_slot_is_held_for_the_earliest_matching_entry(acme):
    with in_clinic(acme):
        world = waiting_world()
        other_day = world.entry(earliest_date=world.day + timedelta(days=1))  # dates miss it
        evenings = world.entry(preferred_start_time=time(17))  # times miss it
        tuesdays = world.entry(preferred_weekdays=[1])  # the day is a Wednesday
        first = world.entry(preferred_weekdays=[2], preferred_start_time=time(9))
        second = world.entry()
        offer = _cancel_and_offer(world)
        assert offer is not None
        assert offer.entry_id == first.pk
        assert (offer.start, offer.end) == (world.start, world.start + timedelta(hours=1))
        assert offer.expires_at > offer.created_at
        first.refresh_from_db()
        assert first.status == WaitlistEntry.Status.OFFERED
        for untouched in (other_day, evenings, tuesdays, second):
            untouched.refresh_from_db()
            assert untouched.status == WaitlistEntry.Status.WAITING


def test_a_hold_refuses_another_patients_booking_with_a_clear_409(acme):
    with in_clinic(acme):
        world = waiting_world()
        world.entry()
        offer = _cancel_and_offer(world)
        with pytest.raises(SlotUnavailableError) as refused:
            scheduling.appointment_book(
                patient=f.patient(first="Desk"),
                practitioner=world.practitioner,
                appointment_type=world.kind,
                start=world.start + timedelta(minutes=30),
            )
        assert "held for a patient on the waitlist" in refused.value.detail
        assert refused.value.extra["held_until"] == offer.expires_at.isoformat()
        # The trigger names its constraint in the message too (Citus drops the diagnostics).
        cause = refused.value.__cause__ or refused.value.__context__
        assert constraint_name_in_message(str(cause)) == "appointment_no_overlap_held", cause
        assert not Appointment.objects.filter(
            practitioner=world.practitioner, status="booked"
        ).exists()


def test_a_hold_binds_nobody_past_its_expiry_even_before_the_task_ends_it(acme):
    with in_clinic(acme):
        world = waiting_world()
        world.entry()
        offer = _cancel_and_offer(world)
        with time_machine.travel(offer.expires_at + timedelta(seconds=1)):
            booked = scheduling.appointment_book(
                patient=f.patient(first="Later"),
                practitioner=world.practitioner,
                appointment_type=world.kind,
                start=world.start,
            )
            offer.refresh_from_db()
            assert offer.status == WaitlistOffer.Status.HELD  # its task has not run
            with pytest.raises(OfferClosedError):
                services.offer_accept(offer=offer)
        assert booked.status == Appointment.Status.BOOKED
        assert appointments_overlapping() == []


def test_the_holder_accepts_and_is_booked_through_the_booking_service(acme):
    with in_clinic(acme):
        world = waiting_world()
        patient = f.patient(first="Keen")
        entry = world.entry(patient)
        offer = _cancel_and_offer(world)
        appointment = services.offer_accept(offer=offer)
        assert (appointment.patient_id, appointment.start) == (patient.pk, world.start)
        assert appointment.practitioner_id == world.practitioner.pk
        offer.refresh_from_db()
        entry.refresh_from_db()
        assert (offer.status, offer.appointment_id) == ("accepted", appointment.pk)
        assert (entry.status, entry.appointment_id) == ("booked", appointment.pk)
        with pytest.raises(OfferClosedError, match="accepted"):
            services.offer_accept(offer=offer)
        with pytest.raises(OfferClosedError):
            services.offer_decline(offer=offer)


def test_a_decline_passes_the_slot_to_the_next_entry(acme):
    with in_clinic(acme):
        world = waiting_world()
        first, second = world.entry(), world.entry()
        offer = _cancel_and_offer(world)
        assert offer.entry_id == first.pk
        services.offer_decline(offer=offer)
        slot = services.FreedSlot(
            world.practitioner.pk, world.start, world.visit.blocked.lower,
            world.visit.blocked.upper, world.visit.pk,
        )  # fmt: skip
        nxt = services.slot_offer(slot=slot)  # what the task queued on commit does
        assert nxt is not None and nxt.entry_id == second.pk
        first.refresh_from_db()
        assert first.status == WaitlistEntry.Status.WAITING  # waits for another time
        assert services.slot_offer(slot=slot) is None  # held already: nobody else


def test_expiry_passes_the_slot_on_and_only_when_due(acme):
    with in_clinic(acme):
        world = waiting_world()
        first, second = world.entry(), world.entry()
        offer = _cancel_and_offer(world)
        assert offer.entry_id == first.pk
        assert services.offer_expire(offer_id=offer.pk) is False  # not due yet
        assert services.offers_due() == []
        later = offer.expires_at + timedelta(seconds=1)
        assert services.offers_due(now=later) == [offer.pk]
        # The beat visits only the clinics holding an offer past its time.
        assert services.clinics_with_offers_due([acme.schema_name, "public"]) == []
        assert services.clinics_with_offers_due([acme.schema_name], now=later) == [acme.schema_name]
        assert services.offer_expire(offer_id=offer.pk, now=later) is True
        assert services.offer_expire(offer_id=offer.pk, now=later) is False  # once
        offer.refresh_from_db()
        assert offer.status == WaitlistOffer.Status.EXPIRED
        world.visit.refresh_from_db()
        slot = services.freed_slot_of(world.visit, "cancelled", {})
        with time_machine.travel(later):
            nxt = services.slot_offer(slot=slot)
        assert nxt is not None and nxt.entry_id == second.pk


def test_a_slot_moved_away_from_is_offered(acme):
    with in_clinic(acme):
        world = waiting_world()
        entry = world.entry()
        moved = scheduling.appointment_reschedule(
            appointment=world.visit, start=world.start + timedelta(hours=3)
        )
        slot = services.freed_slot_of(moved, "rescheduled", moved.events.last().data)
        assert slot is not None and slot.start == world.start
        offer = services.slot_offer(slot=slot)
        assert offer is not None and offer.entry_id == entry.pk


def test_the_database_refuses_a_hold_over_a_visit_and_two_holds_of_one_slot(acme):
    from django.db import IntegrityError, transaction

    with in_clinic(acme):
        world = waiting_world()
        entry = world.entry()
        slot = services.freed_slot_of(world.visit, "cancelled", {})  # the visit still booked
        assert services.slot_offer(slot=slot) is None
        with pytest.raises(IntegrityError, match="slot is taken") as refused, transaction.atomic():
            WaitlistOffer.objects.create(
                entry=entry, patient=entry.patient, practitioner=world.practitioner,
                appointment_type=world.kind, start=world.start,
                end=world.start + timedelta(hours=1), blocked=world.visit.blocked,
                expires_at=world.start,
            )  # fmt: skip
        # Named in the message as well (Citus drops a worker's diagnostics: clinic.errors).
        assert constraint_name_in_message(str(refused.value)) == "waitlist_offer_over_visit"
        offer = _cancel_and_offer(world)
        other = world.entry()
        with pytest.raises(IntegrityError, match="waitlist_offer_one_hold_per_slot"):
            with transaction.atomic():
                WaitlistOffer.objects.create(
                    entry=other, patient=other.patient, practitioner=world.practitioner,
                    appointment_type=world.kind, start=offer.start, end=offer.end,
                    blocked=offer.blocked, expires_at=offer.expires_at,
                )  # fmt: skip


def test_an_entry_names_the_field_it_breaks_and_says_what_its_authorization_lacks(acme):
    from practice.models import ClinicSettings

    with in_clinic(acme):
        world = waiting_world()
        other = f.practitioner(name="Dr. Other")
        with pytest.raises(EntryRefusedError) as refused:
            world.entry(practitioner=other)
        assert refused.value.field == "practitioner"
        with pytest.raises(EntryRefusedError) as refused:
            world.entry(latest_date=world.day - timedelta(days=30))
        assert refused.value.field == "latest_date"
        code = f.service_code("97153", 15)
        code.requires_authorization = True
        code.save()
        world.kind.service_code = code
        world.kind.save()
        assert ClinicSettings.load().authorization_policy == "refuse"
        entry = world.entry()
        assert "needs an authorization" in entry.authorization_note
        assert _cancel_and_offer(world) is None  # passed over: it could not book


def test_availability_leaves_a_held_slot_out_until_the_hold_ends(acme):
    from scheduling.availability import availability

    def free_starts(world) -> set:
        answer = availability(
            appointment_type=world.kind,
            start=world.start - timedelta(hours=1),
            end=world.start + timedelta(hours=2),
            practitioner_ids=[world.practitioner.pk],
        )
        return {slot.start for column in answer for slot in column.slots}

    with in_clinic(acme):
        world = waiting_world()
        world.entry()
        offer = _cancel_and_offer(world)
        assert world.start not in free_starts(world)
        with time_machine.travel(offer.expires_at + timedelta(seconds=1)):
            assert world.start in free_starts(world)  # past the expiry, before any task
        services.offer_decline(offer=offer)
        assert world.start in free_starts(world)


def test_offers_are_webhook_events_ordered_per_offer_and_received_signed(acme):
    """Issue 20's `waitlist.offer_*`: each offer's life as events, written in the change's
    transaction with the offer as its API shows it; a withdrawn offer is none."""
    receiver = start_receiver(Receiver())
    try:
        with in_clinic(acme):
            subscribe(receiver, "/waitlist", events=WAITLIST_EVENTS)
            world = waiting_world()
            first, second, third = world.entry(), world.entry(), world.entry()
            declined = _cancel_and_offer(world)
            services.offer_decline(offer=declined)
            slot = services.freed_slot_of(world.visit, "cancelled", {})
            expired = services.slot_offer(slot=slot)
            later = expired.expires_at + timedelta(seconds=1)
            assert services.offer_expire(offer_id=expired.pk, now=later)
            with time_machine.travel(later):
                accepted = services.slot_offer(slot=slot)
                booked = services.offer_accept(offer=accepted)
            assert (declined.entry_id, expired.entry_id, accepted.entry_id) == (
                first.pk, second.pk, third.pk,
            )  # fmt: skip
            events = list(
                WebhookEvent.objects.order_by("created_at", "pk").values_list(
                    "type", "ordering_key", "data"
                )
            )
            assert [(t, k) for t, k, _ in events] == [
                ("waitlist.offer_sent", f"waitlist_offer:{declined.pk}"),
                ("waitlist.offer_declined", f"waitlist_offer:{declined.pk}"),
                ("waitlist.offer_sent", f"waitlist_offer:{expired.pk}"),
                ("waitlist.offer_expired", f"waitlist_offer:{expired.pk}"),
                ("waitlist.offer_sent", f"waitlist_offer:{accepted.pk}"),
                ("waitlist.offer_accepted", f"waitlist_offer:{accepted.pk}"),
            ]
            last = events[-1][2]
            assert (last["id"], last["status"]) == (accepted.pk, "accepted")
            assert last["appointment"] is not None
            assert datetime.fromisoformat(last["start"]) == world.start
            accepted.refresh_from_db()
            assert last == dict(WaitlistOfferSerializer(accepted).data)  # as the API shows it
            assert [d for _, _, d in events][1]["status"] == "declined"
            # an entry taken off while offered withdraws its offer: no event
            world.visit.refresh_from_db()
            fourth = world.entry()
            with time_machine.travel(later):
                cancelled = scheduling.appointment_cancel(appointment=booked, reason="Away")
            withdrawn = services.slot_offer(
                slot=services.freed_slot_of(cancelled, "cancelled", {}), now=later
            )
            assert withdrawn is not None and withdrawn.entry_id == fourth.pk
            before = WebhookEvent.objects.count()
            services.entry_cancel(entry=fourth, now=later)
            assert WebhookEvent.objects.count() == before
            with time_machine.travel(later + timedelta(minutes=1)):  # all due
                for row in WebhookDelivery.objects.order_by("pk"):
                    assert sending.delivery_send(delivery_id=row.pk) == "succeeded"
        assert len(receiver.accepted()) == before
        assert all(r.signed for r in receiver.received)
    finally:
        stop_receiver(receiver)

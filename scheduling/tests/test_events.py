"""Booking changes are pushed, on commit, to the clinic's schedule groups (real Redis layer)."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from realtime.groups import group_name
from scheduling import services
from scheduling.tests import factories as f
from tests.fixtures import in_clinic


async def _receive(layer, channel: str, count: int) -> list[dict]:
    # One event loop for every receive: channels_redis keeps per-loop receive state.
    return [(await layer.receive(channel))["event"] for _ in range(count)]


def test_booking_and_cancel_publish_to_clinic_and_practitioner_groups(committed_acme):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    with in_clinic(committed_acme):
        p = f.practitioner()
        t = f.appointment_type(p)
        clinic_group = group_name("schedule")
        async_to_sync(layer.group_add)(clinic_group, channel)
        async_to_sync(layer.group_add)(group_name("schedule", "practitioner", p.pk), channel)
        a = services.appointment_book(
            patient=f.patient(),
            practitioner=p,
            appointment_type=t,
            start=f.local(f.next_weekday(2), 10),
        )
        services.appointment_cancel(appointment=a, reason="test")
    received = async_to_sync(_receive)(layer, channel, 4)
    kinds = [event["type"] for event in received]
    assert kinds.count("appointment.booked") == 2 and kinds.count("appointment.cancelled") == 2
    assert {event["appointment"]["id"] for event in received} == {a.pk}
    assert clinic_group.startswith("acme.")


def test_a_rolled_back_booking_publishes_nothing(committed_acme):
    from django.db import transaction

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    with in_clinic(committed_acme):
        p = f.practitioner()
        t = f.appointment_type(p)
        async_to_sync(layer.group_add)(group_name("schedule"), channel)
        with transaction.atomic():
            services.appointment_book(
                patient=f.patient(), practitioner=p, appointment_type=t,
                start=f.local(f.next_weekday(2), 10),
            )  # fmt: skip
            transaction.set_rollback(True)

    async def nothing():
        import asyncio

        try:
            await asyncio.wait_for(layer.receive(channel), timeout=0.5)
            return False
        except TimeoutError:
            return True

    assert async_to_sync(nothing)()

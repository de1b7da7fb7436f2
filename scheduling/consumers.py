"""The schedule board's websocket: `/ws/schedule/` (the smart-booking job's socket is
scheduling/smart/consumer.py)."""

from practice.models import Practitioner
from realtime.groups import group_name
from realtime.revocation import SignedInConsumer
from realtime.tenancy import clinic_database_sync_to_async

from . import selectors

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


@clinic_database_sync_to_async
def _schedule_groups(clinic, user) -> tuple[list[str] | None, str]:
    """The schedule groups `user` may listen to (None: not allowed to watch the board), and
    "clinic" or "own".

    Staff who may view appointments hear the whole clinic; a practitioner who sees only their
    own schedule hears only their own group (the events carry patient names)."""
    if not (user.is_active and user.is_staff and user.has_perm("scheduling.view_appointment")):
        return None, ""
    schema = clinic.schema_name
    if selectors.sees_own_schedule_only(user):
        ids = Practitioner.objects.filter(user=user).values_list("pk", flat=True)
        return [group_name("schedule", "practitioner", pk, schema=schema) for pk in ids], "own"
    return [group_name("schedule", schema=schema)], "clinic"


class ScheduleConsumer(SignedInConsumer):
    """`/ws/schedule/`: the schedule board's live feed. Needs a signed-in staff user of this
    clinic (session cookie or JWT) allowed to view appointments; forwards every committed
    booking change (`{"type": "appointment.booked", "appointment": {...}}`, as published by
    scheduling.services). Refuses with 4401 (not signed in) or 4403 (not allowed); closes with
    4401 when the user is signed out everywhere (realtime.revocation)."""

    groups_joined: list[str] = []

    async def connect(self):
        user = self.scope.get("user")
        clinic = self.scope["clinic"]
        subprotocol = self.scope.get("accepted_subprotocol")
        if user is None or not user.is_authenticated:
            await self.accept(subprotocol=subprotocol)
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        groups, scope = await _schedule_groups(clinic, user)
        await self.accept(subprotocol=subprotocol)
        if groups is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if not await self.user_group_join():
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.groups_joined = groups
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.send_json({"type": "ready", "scope": scope})

    async def disconnect(self, code):
        await self.user_group_leave()
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def event_forward(self, message):
        await self.send_json(message["event"])

"""The patient's waitlist socket: `/ws/waitlist/`."""

from practice import selectors as practice_selectors
from realtime.groups import group_name
from realtime.revocation import SignedInConsumer
from realtime.tenancy import clinic_database_sync_to_async

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


def patient_group(patient_id: int, *, schema: str | None = None) -> str:
    """The group of one patient's waitlist sockets (patient ids are per clinic schema)."""
    return group_name("waitlist", "patient", patient_id, schema=schema)


@clinic_database_sync_to_async
def _patient_id(clinic, user) -> int | None:
    patient = practice_selectors.patient_get_for_user(user=user)
    return patient.pk if patient is not None else None


class WaitlistConsumer(SignedInConsumer):
    """`/ws/waitlist/`: a signed-in patient's offers as they change. Sends `{"type": "ready"}`
    on connect, then `waitlist.held`, `waitlist.accepted` and `waitlist.released` (the offer:
    id, practitioner, start, end, status, expires_at) for the patient's own offers only, as
    each commits; a client that (re)connects reads its page again after `ready`, so nothing
    that happened while it was away is missed. Refuses with 4401 (not signed in) or 4403 (no
    patient record in this clinic: staff watch the board's socket); closes with 4401 when the
    user is signed out everywhere (realtime.revocation)."""

    group: str | None = None

    async def connect(self):
        user = self.scope.get("user")
        clinic = self.scope["clinic"]
        subprotocol = self.scope.get("accepted_subprotocol")
        if user is None or not user.is_authenticated:
            await self.accept(subprotocol=subprotocol)
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        patient_id = await _patient_id(clinic, user)
        await self.accept(subprotocol=subprotocol)
        if patient_id is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = patient_group(patient_id, schema=clinic.schema_name)
        await self.channel_layer.group_add(self.group, self.channel_name)
        if not await self.user_group_join():
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await self.send_json({"type": "ready"})

    async def disconnect(self, code):
        await self.user_group_leave()
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def event_forward(self, message):
        await self.send_json(message["event"])

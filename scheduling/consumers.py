from channels.generic.websocket import AsyncJsonWebsocketConsumer

from practice.models import Practitioner
from practice.selectors import row_in_scope
from realtime.groups import group_name
from realtime.tenancy import clinic_database_sync_to_async

from . import selectors
from .models import SmartBookingJob
from .smart import job_group, job_payload

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


@clinic_database_sync_to_async
def _job_for(clinic, job_id, user) -> tuple[int, dict | None]:
    """(close code or 0, the job's JSON) — read in the socket's clinic schema."""
    job = SmartBookingJob.objects.select_related("patient").filter(pk=job_id).first()
    if job is None:
        return CLOSE_NOT_FOUND, None
    # The jobs of the clinic for those whose grants reach them all, a patient's own.
    if not row_in_scope(
        user=user, permission="scheduling.view_smartbookingjob", patient=job.patient
    ):
        return CLOSE_FORBIDDEN, None
    return 0, job_payload(job)


class JobStatusConsumer(AsyncJsonWebsocketConsumer):
    """`/ws/jobs/<job_id>/`: the current state on connect, then every committed transition;
    closes after a final state. Refuses (4401/4403/4404) unauthenticated sockets, other
    patients' jobs and other clinics' jobs."""

    async def connect(self):
        user = self.scope.get("user")
        clinic = self.scope["clinic"]
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        job_id = self.scope["url_route"]["kwargs"]["job_id"]
        self.group = job_group(job_id, schema=clinic.schema_name)
        # Join first, then read: a transition between the two is sent twice, never lost.
        await self.channel_layer.group_add(self.group, self.channel_name)
        code, payload = await _job_for(clinic, job_id, user)
        await self.accept(subprotocol=self.scope.get("accepted_subprotocol"))
        if code:
            await self.close(code=code)
            return
        await self.send_json(payload)
        if payload["status"] in SmartBookingJob.FINAL:
            await self.close()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def event_forward(self, message):
        job = message["event"]  # the job's JSON, as the API shows it
        await self.send_json(job)
        if job["status"] in SmartBookingJob.FINAL:
            await self.close()


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


class ScheduleConsumer(AsyncJsonWebsocketConsumer):
    """`/ws/schedule/`: the schedule board's live feed. Needs a signed-in staff user of this
    clinic (session cookie or JWT) allowed to view appointments; forwards every committed
    booking change (`{"type": "appointment.booked", "appointment": {...}}`, as published by
    scheduling.services). Refuses with 4401 (not signed in) or 4403 (not allowed)."""

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
        self.groups_joined = groups
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.send_json({"type": "ready", "scope": scope})

    async def disconnect(self, code):
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def event_forward(self, message):
        await self.send_json(message["event"])

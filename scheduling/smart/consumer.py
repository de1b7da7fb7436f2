"""The smart-booking job's websocket: `/ws/jobs/<job_id>/`."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from practice.selectors import row_in_scope
from realtime.tenancy import clinic_database_sync_to_async

from ..models import SmartBookingJob
from .job import job_group, job_payload

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

"""The smart-booking job's websocket: `/ws/jobs/<job_id>/`."""

from practice.selectors import row_in_scope
from realtime.groups import RESYNC
from realtime.revocation import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED, SignedInConsumer
from realtime.tenancy import clinic_database_sync_to_async

from ..models import SmartBookingJob
from .job import for_patient, job_group, job_payload

# The API's test for staff fields (clinic.privacy.reads_as_staff), on the socket's user.
STAFF_VIEW = "scheduling.view_smartbookingjob"

CLOSE_NOT_FOUND = 4404


@clinic_database_sync_to_async
def _job_for(clinic, job_id, user) -> tuple[int, dict | None, bool]:
    """(close code or 0, the job's JSON for `user`, whether `user` reads it as staff) — read
    in the socket's clinic schema (the user's roles are a query there)."""
    job = SmartBookingJob.objects.select_related("patient").filter(pk=job_id).first()
    if job is None:
        return CLOSE_NOT_FOUND, None, False
    # The jobs of the clinic for those whose grants reach them all, a patient's own.
    if not row_in_scope(user=user, permission=STAFF_VIEW, patient=job.patient):
        return CLOSE_FORBIDDEN, None, False
    staff = user.has_perm(STAFF_VIEW)
    return 0, job_payload(job, staff=staff), staff


class JobStatusConsumer(SignedInConsumer):
    """`/ws/jobs/<job_id>/`: the current state on connect, then every committed transition;
    closes after a final state. A patient gets the JSON without the job's staff fields, as from
    the API. Refuses (4401/4403/4404) unauthenticated sockets, other patients' jobs and other
    clinics' jobs; closes with 4401 when the user is signed out everywhere
    (realtime.revocation). Told to resync (events lost to a Redis fault, realtime.groups), it
    sends the job as it is now."""

    async def connect(self):
        user = self.scope.get("user")
        clinic = self.scope["clinic"]
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        job_id = self.job_id = self.scope["url_route"]["kwargs"]["job_id"]
        self.staff = False  # until the job is read: no staff field reaches an unknown reader
        self.group = job_group(job_id, schema=clinic.schema_name)
        # Join first, then read: a transition between the two is sent twice, never lost.
        await self.channel_layer.group_add(self.group, self.channel_name)
        signed_in = await self.user_group_join()
        code, payload, self.staff = await _job_for(clinic, job_id, user)
        await self.accept(subprotocol=self.scope.get("accepted_subprotocol"))
        if code or not signed_in:
            await self.close(code=code or CLOSE_UNAUTHENTICATED)
            return
        await self.send_json(payload)
        if payload["status"] in SmartBookingJob.FINAL:
            await self.close()

    async def disconnect(self, code):
        await self.user_group_leave()
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def event_forward(self, message):
        job = message["event"]  # the job's JSON, as the API shows it to staff
        if job.get("type") == RESYNC["type"]:  # events may have been lost: the job as it is now
            code, job, _ = await _job_for(self.scope["clinic"], self.job_id, self.scope["user"])
            if code:
                await self.close(code=code)
                return
        await self.send_json(job if self.staff else for_patient(job))
        if job["status"] in SmartBookingJob.FINAL:
            await self.close()

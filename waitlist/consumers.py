"""The patient's waitlist socket: `/ws/waitlist/`."""

from practice import selectors as practice_selectors
from realtime.groups import group_name
from realtime.revocation import FeedConsumer
from realtime.tenancy import clinic_database_sync_to_async


def patient_group(patient_id: int, *, schema: str | None = None) -> str:
    """The group of one patient's waitlist sockets (patient ids are per clinic schema)."""
    return group_name("waitlist", "patient", patient_id, schema=schema)


@clinic_database_sync_to_async
def _patient_id(clinic, user) -> int | None:
    patient = practice_selectors.patient_get_for_user(user=user)
    return patient.pk if patient is not None else None


class WaitlistConsumer(FeedConsumer):
    """`/ws/waitlist/`: a signed-in patient's offers as they change. Sends `{"type": "ready"}`
    on connect, then `waitlist.held`, `waitlist.accepted` and `waitlist.released` (the offer:
    id, practitioner, start, end, status, expires_at) for the patient's own offers only, as
    each commits; a client that (re)connects reads its page again after `ready`, so nothing
    that happened while it was away is missed. Refuses with 4401 (not signed in) or 4403 (no
    patient record in this clinic: staff watch the board's socket); closes with 4401 when the
    user is signed out everywhere (realtime.revocation)."""

    async def feed_groups(self, clinic, user):
        patient_id = await _patient_id(clinic, user)
        if patient_id is None:
            return None, {}
        return [patient_group(patient_id, schema=clinic.schema_name)], {}

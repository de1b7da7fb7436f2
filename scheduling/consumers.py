"""The schedule board's websocket: `/ws/schedule/` (the smart-booking job's socket is
scheduling/smart/consumer.py)."""

from practice.models import Practitioner
from realtime.groups import group_name
from realtime.revocation import FeedConsumer
from realtime.tenancy import clinic_database_sync_to_async

from . import selectors


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


class ScheduleConsumer(FeedConsumer):
    """`/ws/schedule/`: the schedule board's live feed. Needs a signed-in staff user of this
    clinic (session cookie or JWT) allowed to view appointments; forwards every committed
    booking change (`{"type": "appointment.booked", "appointment": {...}}`, as published by
    scheduling.services) after `{"type": "ready", "scope": "clinic" | "own"}`. Refuses with 4401
    (not signed in) or 4403 (not allowed); closes with 4401 when the user is signed out
    everywhere (realtime.revocation)."""

    async def feed_groups(self, clinic, user):
        groups, scope = await _schedule_groups(clinic, user)
        return groups, {"scope": scope}

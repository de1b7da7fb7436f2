"""The appointment's state machine, in one table.

`TRANSITIONS` says, for every status change of a booked visit, the statuses it may start from,
the status it leads to, the permission that lets staff do it, whether the visit's own patient
may do it online, and when it may be done:

| action     | from               | to         | permission | patient online | when           |
| ---------- | ------------------ | ---------- | ---------- | -------------- | -------------- |
| check_in   | booked             | checked_in | checkin    | no             | on visit's day |
| complete   | booked, checked_in | completed  | complete   | no             | from its start |
| no_show    | booked             | no_show    | noshow     | no             | from its start |
| cancel     | booked, checked_in | cancelled  | cancel     | until deadline | any time       |
| reschedule | booked             | booked     | book       | until deadline | any time       |

Staff need the permission, the appointment's own (`scheduling.<name>_appointment`).
"The visit's day" is its local date in the clinic's time zone. Staff cancels after the deadline
are marked late; a reschedule's new slot meets the booking rules. Booking itself is not a
transition: its rules are `booking_rules.slot_validate`'s.

The services enforce the table (`transition_check`): a status not in `from` or a moment outside
`when` is InvalidTransitionError (409), the visit's own patient past the change deadline is
LateCancelError (409), and the visit's own patient asking for a staff-only change is 403. Staff
permissions are declared on the views (`user.has_perm(row.permission)`); the schedule board, the
admin's bulk actions and the patient pages ask `transition_allowed` which changes to offer.

The late-change window is defined once (`change_deadline`, `is_late`): a patient may cancel or
move a visit online until its start minus the clinic's `late_cancel_hours`, the deadline itself
included; staff cancels after it are marked late.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from clinic.errors import ApplicationError, PermissionDeniedError
from clinic.tenancy import tenant_connection
from practice import formats
from practice.models import ClinicSettings

from .errors import InvalidTransitionError, LateCancelError
from .models import Appointment

Status = Appointment.Status


class When(StrEnum):
    """When a change may be made, whoever makes it."""

    ANY_TIME = "any_time"
    VISIT_DAY = "visit_day"  # on the visit's own local day, in the clinic's time zone
    AFTER_START = "after_start"  # from the visit's start on


@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset[str]  # the statuses it may start from
    target: str
    permission: str  # what lets staff do it: `user.has_perm(permission)`
    when: When
    patient_online: bool  # the visit's own patient may do it, until `change_deadline`
    done: str  # how messages say it: "A booked appointment cannot be <done>."
    online: str = ""  # how the late-window refusal says it: "can be <online> online up to..."


CHECK_IN = "check_in"
COMPLETE = "complete"
NO_SHOW = "no_show"
CANCEL = "cancel"
RESCHEDULE = "reschedule"

TRANSITIONS: dict[str, Transition] = {
    row.action: row
    for row in (
        Transition(
            CHECK_IN,
            frozenset({Status.BOOKED}),
            Status.CHECKED_IN,
            "scheduling.checkin_appointment",
            When.VISIT_DAY,
            patient_online=False,
            done="checked in",
        ),
        Transition(
            COMPLETE,
            frozenset({Status.BOOKED, Status.CHECKED_IN}),
            Status.COMPLETED,
            "scheduling.complete_appointment",
            When.AFTER_START,
            patient_online=False,
            done="completed",
        ),
        Transition(
            NO_SHOW,
            frozenset({Status.BOOKED}),
            Status.NO_SHOW,
            "scheduling.noshow_appointment",
            When.AFTER_START,
            patient_online=False,
            done="marked as a no-show",
        ),
        Transition(
            CANCEL,
            frozenset({Status.BOOKED, Status.CHECKED_IN}),
            Status.CANCELLED,
            "scheduling.cancel_appointment",
            When.ANY_TIME,
            patient_online=True,
            done="cancelled",
            online="cancelled",
        ),
        Transition(
            # Moving a visit claims a new slot under the booking rules: booking's permission.
            RESCHEDULE,
            frozenset({Status.BOOKED}),
            Status.BOOKED,
            "scheduling.book_appointment",
            When.ANY_TIME,
            patient_online=True,
            done="rescheduled",
            online="moved",
        ),
    )
}


# --- The late-change window -----------------------------------------------------------------


def change_deadline(
    appointment: Appointment, *, clinic_settings: ClinicSettings | None = None
) -> datetime:
    """Until when the visit's patient may cancel or move it online: its start minus the
    clinic's late-cancel window. The deadline itself is still on time."""
    return start_change_deadline(appointment.start, clinic_settings=clinic_settings)


def start_change_deadline(
    start: datetime, *, clinic_settings: ClinicSettings | None = None
) -> datetime:
    """The same deadline for a visit starting at `start` that is not booked yet: what the
    slot picker and the confirmation page tell the patient before they commit."""
    clinic_settings = clinic_settings or ClinicSettings.load()
    return start - timedelta(hours=clinic_settings.late_cancel_hours)


def is_late(
    appointment: Appointment, now: datetime, *, clinic_settings: ClinicSettings | None = None
) -> bool:
    """Whether a change at `now` falls inside the late-change window (after the deadline)."""
    return now > change_deadline(appointment, clinic_settings=clinic_settings)


# --- Who, and when ------------------------------------------------------------------------------


def clinic_zone() -> ZoneInfo:
    """The current clinic's time zone: the request's clinic, or (a task, a test inside
    `schema_context`) the clinic whose schema is in use."""
    name = getattr(tenant_connection.tenant, "timezone", None)
    if name is None:
        from tenants.models import Clinic

        name = (
            Clinic.objects.filter(schema_name=tenant_connection.schema_name)
            .values_list("timezone", flat=True)
            .first()
        )
    return ZoneInfo(name or "UTC")


def _as_patient(appointment: Appointment, user, row: Transition) -> bool:
    """Whether `user` acts as the visit's own patient (online rules), not as staff: their
    account is the patient's and the row's staff permission is not theirs."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return appointment.patient.user_id == user.pk and not user.has_perm(row.permission)


def _day(moment: datetime, zone: ZoneInfo) -> str:
    return formats.message_date(moment, style="long", zone=zone)


def transition_refusal(
    appointment: Appointment,
    action: str,
    *,
    by=None,
    now: datetime,
    zone: ZoneInfo | None = None,
    clinic_settings: ClinicSettings | None = None,
) -> ApplicationError | None:
    """Why `by` (None: the system) may not make `action` happen to `appointment` at `now`, as
    the error the service raises, or None when the table allows it. Staff permissions are the
    views' to check; here the visit's own patient is held to the online rules."""
    row = TRANSITIONS[action]
    patient = _as_patient(appointment, by, row)
    if patient and not row.patient_online:
        return PermissionDeniedError(f"A visit is {row.done} by the clinic, not online.")
    if appointment.status not in row.sources:
        return InvalidTransitionError(
            f"A {appointment.get_status_display().lower()} appointment cannot be {row.done}."
        )
    if row.when == When.AFTER_START and now < appointment.start:
        return InvalidTransitionError(f"A visit cannot be {row.done} before it starts.")
    if row.when == When.VISIT_DAY:
        zone = zone or clinic_zone()
        visit_day, today = _day(appointment.start, zone), _day(now, zone)
        if visit_day != today:
            return InvalidTransitionError(
                f"A visit is {row.done} on its own day ({visit_day}, {zone.key}); "
                f"it is {today} there now."
            )
    if patient:
        clinic_settings = clinic_settings or ClinicSettings.load()
        if is_late(appointment, now, clinic_settings=clinic_settings):
            return LateCancelError(
                f"Appointments can be {row.online} online up to "
                f"{clinic_settings.late_cancel_hours} hours ahead. Please call the clinic."
            )
    return None


def transition_check(
    appointment: Appointment, action: str, *, by=None, now: datetime
) -> Transition:
    """Raise the refusal of `transition_refusal`, if any; else return the table's row."""
    refusal = transition_refusal(appointment, action, by=by, now=now)
    if refusal is not None:
        raise refusal
    return TRANSITIONS[action]


def transition_allowed(
    appointment: Appointment,
    action: str,
    *,
    user,
    now: datetime,
    zone: ZoneInfo | None = None,
    clinic_settings: ClinicSettings | None = None,
) -> bool:
    """Whether to offer `action` on `appointment` to `user` at `now` (a board button, a bulk
    action, a patient page's link): the row's staff permission or, where the row allows it,
    being the visit's own patient; then everything `transition_refusal` checks."""
    row = TRANSITIONS[action]
    staff = user.has_perm(row.permission)
    own = row.patient_online and appointment.patient.user_id == user.pk
    if not (staff or own):
        return False
    refusal = transition_refusal(
        appointment, action, by=user, now=now, zone=zone, clinic_settings=clinic_settings
    )
    return refusal is None

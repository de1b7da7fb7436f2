"""scheduling's grants: the schedule (appointments, series, smart-booking jobs), appointment
types, working hours, time off, closures and holidays, and calendar feeds (see
clinic.permissions for the format; accounts.roles merges every app's). The README's role
table says the same in words.

The appointment's own permissions (`Appointment.Meta.permissions`) name what may be done to
a visit: `book` (and move it to another time), `checkin`, `complete`, `noshow`, `cancel`,
`overbook` (book over another visit or outside hours, on purpose); `change` edits a visit's
staff notes only. The API, the admin's bulk actions and the schedule board all ask for them.
"""

from clinic.permissions import (
    BILLER,
    CLINIC_ADMIN,
    FRONT_DESK,
    INTEGRATOR,
    OWN,
    PATIENT,
    PRACTITIONER,
    SELF,
    Grant,
)

VIEW = ("view",)
EDIT = ("add", "change", "view")
MANAGE = ("add", "change", "delete", "view")  # rows nothing points at: hours, time off

APPOINTMENT_DESK = ("view", "change", "book", "checkin", "complete", "noshow", "cancel")

_DESK = {
    "scheduling.appointment": APPOINTMENT_DESK,  # booked through the services, not a form
    "scheduling.appointmentseries": VIEW,
    "scheduling.appointmenttype": VIEW,
    "scheduling.workinghours": VIEW,  # hours are the clinic admin's
    "scheduling.timeoff": MANAGE,  # the desk records a practitioner's sick call
    "scheduling.smartbookingjob": VIEW,
    "scheduling.closure": MANAGE,  # the desk records a snow day as the admin a holiday
}

GRANTS = {
    CLINIC_ADMIN: {
        **_DESK,
        "scheduling.appointment": (*APPOINTMENT_DESK, "overbook"),
        "scheduling.appointmenttype": EDIT,  # retired, never deleted: visits point at them
        "scheduling.workinghours": MANAGE,
        "scheduling.calendarfeed": EDIT,
    },
    FRONT_DESK: {
        **_DESK,
        "scheduling.appointment": (*APPOINTMENT_DESK, "overbook"),
    },
    # Integrators do through the API what the front desk does, but never overbook.
    INTEGRATOR: _DESK,
    PRACTITIONER: {  # their own column: see it, complete their visits, keep their time off
        "scheduling.appointment": Grant(("view", "change", "complete"), OWN),
        "scheduling.appointmentseries": Grant(VIEW, OWN),
        "scheduling.appointmenttype": VIEW,
        "scheduling.workinghours": Grant(VIEW, OWN),
        "scheduling.timeoff": Grant(MANAGE, OWN),
        "scheduling.calendarfeed": Grant(EDIT, OWN),
        "scheduling.closure": VIEW,
    },
    BILLER: {
        "scheduling.appointment": VIEW,
        "scheduling.appointmentseries": VIEW,
        "scheduling.appointmenttype": VIEW,
        "scheduling.closure": VIEW,
    },
    # A patient books, moves and cancels their own visits (under the clinic's late-cancel
    # window) and follows their smart-booking jobs.
    PATIENT: {
        "scheduling.appointment": Grant(("view", "book", "cancel"), SELF),
        "scheduling.appointmentseries": Grant(VIEW, SELF),
        "scheduling.smartbookingjob": Grant(VIEW, SELF),
    },
}

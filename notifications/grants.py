"""notifications' grants (see clinic.permissions for the format; accounts.roles merges every
app's). The README's role table says the same in words.

The log is written by the services only, so no role adds, changes or deletes a notification.
Clinic admins keep the reminder rules and the message templates; the front desk reads the log
and records a patient's opt-outs; a practitioner reads the log of the patients they see; a
patient reads their own messages through the API.
"""

from clinic.permissions import (
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
MANAGE = ("add", "change", "delete", "view")

GRANTS = {
    CLINIC_ADMIN: {
        "notifications.notification": VIEW,
        "notifications.reminderrule": MANAGE,
        "notifications.messagetemplate": MANAGE,
        "notifications.channeloptout": MANAGE,
    },
    FRONT_DESK: {
        "notifications.notification": VIEW,
        "notifications.reminderrule": VIEW,
        "notifications.channeloptout": MANAGE,
    },
    INTEGRATOR: {"notifications.notification": VIEW},
    PRACTITIONER: {"notifications.notification": Grant(VIEW, OWN)},
    PATIENT: {"notifications.notification": Grant(VIEW, SELF)},
}

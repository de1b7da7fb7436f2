"""waitlist's grants (see clinic.permissions for the format; accounts.roles merges every app's).
The README's role table says the same in words.

The front desk, integrators and clinic admins keep the whole waitlist (add, change, take off)
and read every offer; accepting or declining an offer for a patient (on the phone) is the
offer's `accept`, the desk's and the admin's. A practitioner reads the entries and offers of
their own column. A patient keeps their own entries and accepts or declines their own offers
(the API's self-service, the patient pages, or the signed link). Offers are written by the
services only: nobody adds, changes or deletes one.
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
KEEP = ("add", "change", "delete", "view")  # delete: the entry is taken off (cancelled)

_DESK = {
    "waitlist.waitlistentry": KEEP,
    "waitlist.waitlistoffer": ("view", "accept"),
}

GRANTS = {
    CLINIC_ADMIN: _DESK,
    FRONT_DESK: _DESK,
    INTEGRATOR: {"waitlist.waitlistentry": KEEP, "waitlist.waitlistoffer": VIEW},
    PRACTITIONER: {
        "waitlist.waitlistentry": Grant(VIEW, OWN),
        "waitlist.waitlistoffer": Grant(VIEW, OWN),
    },
    PATIENT: {
        "waitlist.waitlistentry": Grant(KEEP, SELF),
        "waitlist.waitlistoffer": Grant(("view", "accept"), SELF),
    },
}

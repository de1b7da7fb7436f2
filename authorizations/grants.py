"""authorizations' grants: prior authorizations, their lines and the unit ledger (see
clinic.permissions for the format; accounts.roles merges every app's)."""

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

EDIT = ("add", "change", "view")
VIEW = ("view",)

# Authorizations are cancelled, never deleted; the ledger is written by the services only
# (reserving, releasing and consuming units on a line needs `change` on the line).
_MANAGE = {
    "authorizations.authorization": EDIT,
    "authorizations.authorizationline": EDIT,
    "authorizations.unitreservation": VIEW,
    # the queue of patients' requests: approve (creates the authorization) or decline
    "authorizations.authorizationrequest": ("change", "view"),
}

GRANTS = {
    CLINIC_ADMIN: _MANAGE,
    FRONT_DESK: _MANAGE,
    INTEGRATOR: _MANAGE,
    PRACTITIONER: {  # their own patients' (those they see), without the ledger
        "authorizations.authorization": Grant(VIEW, OWN),
        "authorizations.authorizationline": Grant(VIEW, OWN),
        "authorizations.authorizationrequest": Grant(VIEW, OWN),
    },
    BILLER: {
        "authorizations.authorization": VIEW,
        "authorizations.authorizationline": VIEW,
        "authorizations.unitreservation": VIEW,
        "authorizations.authorizationrequest": VIEW,
    },
    PATIENT: {
        "authorizations.authorization": Grant(VIEW, SELF),
        "authorizations.authorizationrequest": Grant(("add", "view"), SELF),
    },
}

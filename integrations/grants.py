"""integrations' grants: API clients and the clinic's usage are the clinic admin's (see
clinic.permissions for the format)."""

from clinic.permissions import CLINIC_ADMIN

GRANTS = {
    CLINIC_ADMIN: {
        "integrations.apiclient": ("add", "change", "view", "usage"),
    },
}

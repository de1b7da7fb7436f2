"""accounts' grants: the clinic's people and their role groups (see clinic.permissions for the
format; accounts.roles merges every app's)."""

from clinic.permissions import CLINIC_ADMIN, FRONT_DESK

# accounts also grants on Django's auth app (the role groups) and on axes (sign-in failures,
# accounts.lockout): both are accounts' business.
APP_LABELS = ("accounts", "auth", "axes")

# People have history (appointments, ledgers): nobody deletes a user; the admin deactivates.
GRANTS = {
    CLINIC_ADMIN: {
        "accounts.user": ("add", "change", "view"),
        "auth.group": ("view",),  # the groups are the grants, written by roles_sync only
        "axes.accessattempt": ("delete", "view"),  # see who is locked out, and unlock them
    },
    FRONT_DESK: {
        "accounts.user": ("view",),  # to link a patient record to its portal account
    },
}

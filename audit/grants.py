"""audit's grants (see clinic.permissions for the format): the audit trail is the clinic
admins' to read and export. No role may add, change or delete an event (the model has no
such permission; PostgreSQL refuses UPDATE and DELETE anyway)."""

from clinic.permissions import CLINIC_ADMIN

GRANTS = {
    CLINIC_ADMIN: {"audit.auditevent": ("view", "export")},
}

"""webhooks' grants (see clinic.permissions for the format; accounts.roles merges every app's).
The README's role table says the same in words.

Clinic admins keep the subscriptions and read and replay the delivery log; nobody else touches
them (an integrator's own receiver is set up by the clinic's admin). Events and deliveries are
written by the services only.
"""

from clinic.permissions import CLINIC_ADMIN

GRANTS = {
    CLINIC_ADMIN: {
        "webhooks.webhooksubscription": ("add", "change", "delete", "view"),
        "webhooks.webhookdelivery": ("view", "replay"),
    },
}

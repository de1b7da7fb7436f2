"""The events a clinic's webhook subscriptions may ask for.

`webhooks.services.event_emit` (one) and `events_emit` (a batch) write an event and one delivery
row per active subscription of the clinic that asked for its type, inside the transaction of the
change, and queue their sends after commit. Domain apps do not import webhooks: they send their
own signals (`scheduling.signals`, `authorizations.signals`, `billing.signals`), and
`webhooks.receivers` turns those into events. The waitlist, the one app above webhooks, calls
`events_emit` itself in its services' transactions (`waitlist.services._tell_integrators`: the
offer as its API shows it, ordered per offer). A new
type is added here and to the constraint `webhook_subscription_known_events` (a migration).
"""

APPOINTMENT_EVENTS = (
    "appointment.booked",
    "appointment.changed",
    "appointment.cancelled",
    "appointment.checked_in",
    "appointment.completed",
    "appointment.no_show",
)
SMART_BOOKING_EVENTS = ("smart_booking.completed", "smart_booking.failed")
AUTHORIZATION_EVENTS = ("authorization.threshold_reached", "authorization.expiring")
CLAIM_EVENTS = (
    "claim.submitted",
    "claim.accepted",
    "claim.rejected",
    "claim.paid",
    "claim.partially_paid",
    "claim.denied",
)
REMITTANCE_EVENTS = ("remittance.posted",)
# The waitlist's: an offer made to a patient, taken, declined or run out.
WAITLIST_EVENTS = (
    "waitlist.offer_sent",
    "waitlist.offer_accepted",
    "waitlist.offer_declined",
    "waitlist.offer_expired",
)
EVENT_TYPES = (
    *APPOINTMENT_EVENTS,
    *SMART_BOOKING_EVENTS,
    *AUTHORIZATION_EVENTS,
    *CLAIM_EVENTS,
    *REMITTANCE_EVENTS,
    *WAITLIST_EVENTS,
)

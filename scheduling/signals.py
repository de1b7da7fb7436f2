"""Signals scheduling sends for apps above it that react to a visit's changes without being
imported by it (notifications, webhooks, billing's no-show and late-cancel fees).

`appointment_changed` is sent by `services._record`, inside the service's transaction, after
the change and its event row are written: a receiver's writes commit or roll back with the
change itself, and a receiver's error fails the change (receivers queue their side effects with
`transaction.on_commit`). Keyword arguments:

- `appointment`: the Appointment as saved (status, start, practitioner, location current);
- `kind`: "booked", "cancelled", "rescheduled", "checked_in", "completed", "no_show" or
  "no_show_undone";
- `by`: the user who made the change, or None (a job, the system);
- `data`: the event's data ("previous" start / end / practitioner for a move, "reason" and
  "late" for a cancel, "source" for a booking).

`smart_booking_finished` is sent by `smart.job` when a job ends `completed` or `failed`, inside
the transaction that saves that status (for webhooks). Keyword argument: `job`, the
SmartBookingJob as saved.

Model save signals carry no business rules; these are the contract.
"""

from django.dispatch import Signal

appointment_changed = Signal()
smart_booking_finished = Signal()

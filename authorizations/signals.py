"""Signals authorizations sends for apps above it that react without being imported by it
(webhooks). Sent inside the transaction of the change.

- `authorization_threshold_reached`: taking units (`units_reserve`, `units_use`) brought a line
  from below its authorization's `alert_threshold_percent` to or above it. Keyword arguments:
  `authorization_id`, `line_id`, `percent_used`.
- `authorization_expiring`: the daily alerts (`authorization_alerts_send`) found the
  authorization within its `alert_days_before_expiry`; sent every day it stays so (receivers
  that want it once keep track). Keyword arguments: `authorization_id`, `days_left`.

Model save signals carry no business rules; these are the contract.
"""

from django.dispatch import Signal

authorization_threshold_reached = Signal()
authorization_expiring = Signal()

"""Signals billing sends for apps above it that react to its changes without billing importing
them (webhooks). Each is sent inside the transaction of the change, after it is written: a
receiver's rows commit or roll back with it (receivers queue their side effects with
`transaction.on_commit`).

- `claims_status_changed`: claims moved to one status. Keyword arguments: `claim_ids` (the
  claims, ids), `status` (their new `Claim.Status`: "submitted" by `claims.claims_submit`,
  "accepted" / "rejected" by `claims.acknowledgement_import`, "paid" / "partially_paid" /
  "denied" by `posting.remittance_post`).
- `remittance_posted`: an 835's transaction set was posted (once per payer and trace; a file
  posted again sends nothing). Keyword argument: `remittance_id`.

Model save signals carry no business rules; these are the contract.
"""

from django.dispatch import Signal

claims_status_changed = Signal()
remittance_posted = Signal()

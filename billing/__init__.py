"""Billing: fees, charges, claims, remittances and balances (issue 17)."""

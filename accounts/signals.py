"""Signals `accounts` sends, so that apps beside or above it react without `accounts` importing
them.

`tokens_revoked(sender=User, user_ids=[...], schema_name="...")`: these users of that clinic
were signed out everywhere (`services.users_sign_out_everywhere`: a new password, a
deactivation, a change of roles, "sign out everywhere"). Sent once the revocation is committed,
never for one that rolled back. `realtime` closes the users' open websockets on it
(`realtime.revocation`): the sockets checked the user when they opened, and a revoked token or
session is refused by the next request only.
"""

from django.dispatch import Signal

tokens_revoked = Signal()

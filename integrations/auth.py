"""Who stands behind a client-credentials access token: the client's principal.

Installed into accounts' JWT authentication when Django starts (`IntegrationsConfig.ready`),
so the API, its permission class and the audit trail see a user: the client's own user,
carrying the client's id (`api_client_id`, which the audit trail records) and its scopes
(`api_scopes`, which `has_perm` answers from). Its roles read as the integrator's, so what the
code asks of staff (`books_as_staff`, the staff-only fields) treats it as an integrator, while
its permissions are only its scopes'.
"""

from rest_framework import exceptions
from rest_framework_simplejwt.tokens import Token

from accounts.auth import CLIENT_CLAIM
from clinic.permissions import INTEGRATOR

from .models import ApiClient

SCOPE_CLAIM = "scope"


class ClientRevokedError(exceptions.AuthenticationFailed):
    default_detail = "This API client was revoked (or removed). Ask the clinic for a new one."
    default_code = "client-revoked"


def client_principal(token: Token):
    """The principal of a client token (its schema was already checked), or 401."""
    client = (
        ApiClient.objects.select_related("user")
        .filter(client_id=str(token.get(CLIENT_CLAIM)))
        .first()
    )
    if client is None or client.revoked_at is not None or not client.user.is_active:
        raise ClientRevokedError()
    granted = str(token.get(SCOPE_CLAIM, "")).split()
    user = client.user
    user.__dict__["roles"] = frozenset({INTEGRATOR})  # User.roles is a cached property
    user.api_client_id = client.client_id  # type: ignore[attr-defined]
    # narrowed since the token was issued: the client's scopes now
    user.api_scopes = frozenset(granted) & frozenset(client.scopes)  # type: ignore[attr-defined]
    user.api_rate_limit = client.rate_limit_per_minute  # type: ignore[attr-defined]
    return user

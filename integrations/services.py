"""API clients: create, change, rotate the secret, revoke; and the client-credentials check.

A secret is 256 random bits shown once, when made; only its hash is stored (Django's password
hashers, so `check_password` compares in constant time and a stolen table gives no secret).
"""

import secrets
from datetime import datetime, timedelta

from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from clinic.errors import ApplicationError, ConflictError
from clinic.permissions import API_SCOPES

from .models import ApiClient

# How long a rotated-out secret may stay valid at most.
MAX_OVERLAP = timedelta(days=30)


class ApiClientRevokedError(ConflictError):
    code = "api-client-revoked"
    title = "This API client is revoked"


class ApiClientFieldError(ApplicationError):
    """A value refused, naming its field (400 with `errors`)."""

    code = "validation-error"

    def __init__(self, field: str, message: str):
        super().__init__(message, extra={"errors": {field: [message]}})


def _scopes_check(scopes) -> list[str]:
    chosen = sorted(set(scopes))
    unknown = [scope for scope in chosen if scope not in API_SCOPES]
    if not chosen or unknown:
        raise ApiClientFieldError(
            "scopes",
            f"Unknown scope(s): {', '.join(unknown)}." if unknown else "Name at least one scope.",
        )
    return chosen


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


@transaction.atomic
def api_client_create(
    *,
    name: str,
    scopes,
    created_by: User | None,
    rate_limit_per_minute: int | None = None,
) -> tuple[ApiClient, str]:
    """Make a client and its principal (a user with no password and no role); return the
    client and its secret, which is never stored nor shown again."""
    chosen = _scopes_check(scopes)
    client_id = f"cl_{secrets.token_urlsafe(18)}"
    user = User(
        email=f"{client_id.lower()}@api-clients.invalid",
        full_name=f"API client: {name}"[:200],
        is_staff=False,
    )
    user.set_unusable_password()
    user.save()
    secret = _new_secret()
    client = ApiClient.objects.create(
        client_id=client_id,
        name=name,
        scopes=chosen,
        user=user,
        secret_hash=make_password(secret),
        created_by=created_by,
        rate_limit_per_minute=rate_limit_per_minute,
    )
    return client, secret


@transaction.atomic
def api_client_update(*, client: ApiClient, **fields) -> ApiClient:
    """Change the name, scopes or rate limit; narrower scopes bind tokens already out at once
    (a token's scopes are intersected with the client's on every request)."""
    locked = ApiClient.objects.select_for_update().get(pk=client.pk)
    if locked.revoked_at is not None:
        raise ApiClientRevokedError("A revoked client cannot be changed.")
    if "scopes" in fields:
        fields["scopes"] = _scopes_check(fields["scopes"])
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.save(update_fields=list(fields))
    return locked


@transaction.atomic
def api_client_rotate(
    *, client: ApiClient, previous_valid_until: datetime
) -> tuple[ApiClient, str]:
    """A new secret; the current one stays valid until `previous_valid_until` (now: at once;
    at most MAX_OVERLAP ahead). A secret rotated out before is dropped. Under the client's row
    lock, so two rotations make two secrets one after the other."""
    now = timezone.now()
    if previous_valid_until < now - timedelta(seconds=1):
        raise ApiClientFieldError("previous_secret_valid_until", "This time is in the past.")
    if previous_valid_until > now + MAX_OVERLAP:
        raise ApiClientFieldError(
            "previous_secret_valid_until", "At most 30 days ahead: rotate again later."
        )
    locked = ApiClient.objects.select_for_update().get(pk=client.pk)
    if locked.revoked_at is not None:
        raise ApiClientRevokedError("A revoked client has no secret to rotate.")
    secret = _new_secret()
    locked.previous_secret_hash = locked.secret_hash
    locked.previous_valid_until = max(previous_valid_until, now)
    locked.secret_hash = make_password(secret)
    locked.save(update_fields=["previous_secret_hash", "previous_valid_until", "secret_hash"])
    return locked, secret


@transaction.atomic
def api_client_revoke(*, client: ApiClient) -> ApiClient:
    """Revoke for good: its tokens are refused on their next request (the client's row is
    read on every request) and its secrets at the token endpoint. Revoking twice is a no-op."""
    locked = ApiClient.objects.select_for_update().get(pk=client.pk)
    if locked.revoked_at is None:
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        User.objects.filter(pk=locked.user_id).update(is_active=False)
    return locked


_DUMMY_HASH: list[str] = []


def api_client_authenticate(*, client_id: str, secret: str) -> ApiClient | None:
    """The active client whose id and secret (current, or previous within its window) these
    are, or None. Costs one hash whether or not the client exists (no timing oracle)."""
    client = ApiClient.objects.filter(client_id=client_id, revoked_at__isnull=True).first()
    if client is None:
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(make_password(_new_secret()))
        check_password(secret, _DUMMY_HASH[0])
        return None
    if check_password(secret, client.secret_hash):
        return client
    if (
        client.previous_secret_hash
        and client.previous_valid_until is not None
        and timezone.now() < client.previous_valid_until
        and check_password(secret, client.previous_secret_hash)
    ):
        return client
    return None

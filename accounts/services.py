import functools
from collections.abc import Iterable

from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F

from clinic.permissions import ALL_ROLES, PATIENT
from clinic.tenancy import tenant_connection

from .models import User
from .signals import tokens_revoked


@transaction.atomic
def user_create(
    *,
    email: str,
    password: str | None,
    full_name: str = "",
    roles: Iterable[str] = (),
    validate: bool = True,
    password_hash: str | None = None,
) -> User:
    """Create a user of the current clinic with the given roles.

    Staff roles (anything but `patient`) may sign in to the clinic's admin. Raises
    ValidationError naming the field for a duplicate email, unknown role or weak password.
    `password_hash`, `make_password(password)` made beforehand, is stored instead of hashing
    `password` here (provisioning hashes while PostgreSQL clones the clinic's schema).
    """
    roles = tuple(roles)
    unknown = set(roles) - set(ALL_ROLES)
    if unknown:
        raise ValidationError({"roles": f"Unknown role(s): {', '.join(sorted(unknown))}."})
    email = User.objects.normalize_email(email).lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": "A user with this email already exists in this clinic."})
    user = User(email=email, full_name=full_name, is_staff=bool(set(roles) - {PATIENT}))
    if password is not None and validate:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from exc
    if password_hash is not None:
        user.password = password_hash
    else:
        user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    if roles:
        user.groups.set(Group.objects.filter(name__in=roles))
    return user


def users_sign_out_everywhere(*, user_ids: Iterable[int]) -> None:
    """Revoke every access and refresh token and every browser session of these users at
    once: their token version goes up by one, in one atomic UPDATE (two revocations at once
    both count). Tokens carry the version they were issued with and sessions hash it
    (User._get_session_auth_hash), so all of them fail on their next request; nothing is
    listed or blacklisted one by one. Once committed, `signals.tokens_revoked` names them
    (their open websockets close); a failing receiver is logged, never undoes the revocation."""
    ids = list(user_ids)
    if ids:
        User.objects.filter(pk__in=ids).update(token_version=F("token_version") + 1)
        revoked = functools.partial(
            tokens_revoked.send,
            sender=User,
            user_ids=ids,
            schema_name=tenant_connection.schema_name,
        )
        transaction.on_commit(revoked, robust=True)


def user_sign_out_everywhere(*, user: User) -> None:
    """`users_sign_out_everywhere` for one user, whose instance then holds the new version
    (to sign them in again, or keep the session that asked, with the new version)."""
    users_sign_out_everywhere(user_ids=[user.pk])
    user.refresh_from_db(fields=["token_version"])

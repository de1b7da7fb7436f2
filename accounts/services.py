from collections.abc import Iterable

from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from clinic.permissions import ALL_ROLES, PATIENT

from .models import User


@transaction.atomic
def user_create(
    *,
    email: str,
    password: str | None,
    full_name: str = "",
    roles: Iterable[str] = (),
    validate: bool = True,
) -> User:
    """Create a user of the current clinic with the given roles.

    Staff roles (anything but `patient`) may sign in to the clinic's admin. Raises
    ValidationError naming the field for a duplicate email, unknown role or weak password.
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
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    if roles:
        user.groups.set(Group.objects.filter(name__in=roles))
    return user

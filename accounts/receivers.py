"""What revokes a user's tokens and sessions without anyone asking: a new password, a
deactivation, a change of roles.

These are signal receivers, not service calls, because every path that changes them must
revoke: Django's admin forms, its password-reset and password-change views, `set_password`
then `save()` anywhere, `user.groups.add()` and `group.user_set.remove()`. A receiver is the
one place that sees them all; what it does is the service's (`users_sign_out_everywhere`).
"""

from django.db.models.signals import m2m_changed, post_save

from .models import User
from .services import user_sign_out_everywhere, users_sign_out_everywhere


def _user_saved(sender, instance: User, created: bool, **kwargs) -> None:
    # `_password` holds the new raw password between `set_password` and the end of `save()`
    # (Django clears it for a hash upgrade at sign-in, which changes nothing the user chose).
    # An inactive user's tokens are refused anyway; the bump keeps them dead if the account
    # is opened again.
    if created:
        return
    if getattr(instance, "_password", None) is not None or not instance.is_active:
        user_sign_out_everywhere(user=instance)


def _roles_changed(sender, instance, action: str, reverse: bool, pk_set, **kwargs) -> None:
    """Roles are the user's groups; the tokens carry them (and sessions act with them), so a
    change in either direction (`user.groups...` or `group.user_set...`) revokes."""
    if reverse and action == "pre_clear":  # the group's users are unknown after the clear
        instance._users_before_clear = list(instance.user_set.values_list("pk", flat=True))
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if not reverse:
        if pk_set or action == "post_clear":
            user_sign_out_everywhere(user=instance)
    elif action == "post_clear":
        users_sign_out_everywhere(user_ids=instance.__dict__.pop("_users_before_clear", ()))
    else:
        users_sign_out_everywhere(user_ids=pk_set)


def connect() -> None:
    post_save.connect(_user_saved, sender=User, dispatch_uid="accounts-revoke-on-save")
    m2m_changed.connect(
        _roles_changed, sender=User.groups.through, dispatch_uid="accounts-revoke-on-roles"
    )

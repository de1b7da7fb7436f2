"""Two-factor sign-in for staff (TOTP, django-otp), when the clinic requires it.

Whether a clinic requires it is the clinic's setting (`practice.ClinicSettings`), which
accounts may not import: practice installs the question here when Django starts
(`policy_install`), as every app installs its grants. When it is required:

- a staff member's admin session counts only once a code from their authenticator app has
  verified it (django-otp's `OTPMiddleware` and `otp_login`): until then every admin page
  sends them to enter a code, or to enrol an app first (`StaffTwoFactorMiddleware`; the pages
  are backoffice's), and the API and the sockets treat the session as no session;
- the token endpoint wants the field `otp` beside the password (`token_otp_check`).

Patients are never asked. A code is checked by django-otp's TOTPDevice (30-second steps, one
step of tolerance, a code used once only, and slower answers after failures).
"""

from collections.abc import Callable

from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django_otp import DEVICE_ID_SESSION_KEY, devices_for_user
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_tenants.utils import get_public_schema_name
from rest_framework import serializers

from clinic.tenancy import tenant_connection

from .models import User
from .services import users_sign_out_everywhere

_policy: list[Callable[[], bool]] = []


def policy_install(required: Callable[[], bool]) -> None:
    """Make `required()` (asked in the current clinic's schema) the clinic's answer to
    "must staff use a second factor?"."""
    _policy[:] = [required]


def two_factor_required(user) -> bool:
    """Whether `user` must verify a code: staff of a clinic that requires it."""
    if not (user.is_authenticated and user.is_staff):
        return False
    if not _policy or tenant_connection.schema_name == get_public_schema_name():
        return False
    return _policy[0]()


def session_verified(session, user) -> bool:
    """Whether a session of `user` may act: verified by a code of a device still theirs, or
    needing none (what OTPMiddleware's `user.is_verified()` says, for the sockets)."""
    if not two_factor_required(user):
        return True
    device = Device.from_persistent_id(session.get(DEVICE_ID_SESSION_KEY) or "")
    return device is not None and device.user_id == user.pk and device.confirmed


def staff_device(user: User) -> TOTPDevice | None:
    """The user's enrolled (confirmed) authenticator, if any."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def staff_device_pending(user: User) -> TOTPDevice:
    """The authenticator being enrolled: a new secret, kept until a code confirms it."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name="Authenticator", confirmed=False)


@transaction.atomic
def staff_device_confirm(*, device: TOTPDevice, code: str) -> bool:
    """Enrol `device` when `code` is its current code; the user's other devices go."""
    if not device.verify_token(code):
        return False
    TOTPDevice.objects.filter(user_id=device.user_id).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return True


@transaction.atomic  # the devices are locked while a code is checked: a code works once
def staff_code_verify(*, user: User, code: str) -> TOTPDevice | None:
    """The user's enrolled device that `code` verifies, or None."""
    for device in devices_for_user(user, confirmed=True, for_verify=True):
        if device.verify_token(code):
            return device
    return None


@transaction.atomic
def staff_two_factor_reset(*, user_ids) -> None:
    """Forget the authenticators of these users (a lost phone) and sign them out everywhere:
    they sign in again and enrol a new app."""
    ids = list(user_ids)
    TOTPDevice.objects.filter(user_id__in=ids).delete()
    users_sign_out_everywhere(user_ids=ids)


def token_otp_check(user: User, code: str | None) -> None:
    """The token endpoint's second step: staff of a clinic that requires two-factor send the
    current code of their authenticator as `otp`; 400 naming `otp` otherwise."""
    if not two_factor_required(user):
        return
    if staff_device(user) is None:
        raise serializers.ValidationError(
            {"otp": ["Two-factor sign-in is required: enrol an authenticator app in the admin."]}
        )
    if not code:
        raise serializers.ValidationError(
            {"otp": ["Two-factor sign-in is required: send the code of your authenticator app."]}
        )
    if staff_code_verify(user=user, code=code) is None:
        raise serializers.ValidationError({"otp": ["This code is wrong or was already used."]})


TWO_FACTOR_PATHS = ("/admin/account/two-factor/", "/admin/logout/", "/admin/login/")


class StaffTwoFactorMiddleware:
    """Until a code verifies it, the session of staff who must use two-factor opens only the
    two-factor pages (and logout): the admin redirects there; anything else (the API, the
    patient pages) sees no one signed in. Runs after django-otp's OTPMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if two_factor_required(user) and not user.is_verified():
            if request.path.startswith("/admin/"):
                if not request.path.startswith(TWO_FACTOR_PATHS):
                    target = reverse("admin_two_factor")
                    return redirect(f"{target}?{urlencode({'next': request.get_full_path()})}")
            else:
                request.user = AnonymousUser()
        return self.get_response(request)

"""The signed-in staff member's own account in the admin: sign out everywhere, and the
two-factor step (accounts/two_factor.py) when the clinic requires it: enrol an authenticator
app (its secret as text and as a QR code, confirmed by a first code), then a code after the
password at every sign-in.

Mounted under /admin/account/ (clinic/urls_tenants.py), before the admin's own URLs; every
view requires a signed-in staff user (the admin's own check).
"""

from base64 import b32encode

import qrcode
import qrcode.image.svg
from django import forms
from django.contrib import admin, messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login

from accounts.services import user_sign_out_everywhere
from accounts.two_factor import (
    staff_code_verify,
    staff_device,
    staff_device_confirm,
    staff_device_pending,
    two_factor_required,
)


@require_POST
def sign_out_everywhere(request: HttpRequest) -> HttpResponse:
    """Revokes every token and ends every session of the signed-in staff member (this one
    included): a lost laptop, a shared workstation."""
    user_sign_out_everywhere(user=request.user)
    logout(request)
    messages.info(request, "You are signed out on every device and app.")
    return redirect("admin:login")


class CodeForm(forms.Form):
    code = forms.RegexField(
        regex=r"^\s*\d{6}\s*$",
        label="Code",
        help_text="The 6 digits your authenticator app shows now.",
        error_messages={"invalid": "Enter the 6 digits your app shows."},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )

    def clean_code(self) -> str:
        return self.cleaned_data["code"].strip()


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if target and safe else "/admin/"


@require_http_methods(["GET", "POST"])
def two_factor(request: HttpRequest) -> HttpResponse:
    """The code after the password; an app not yet enrolled is enrolled first."""
    user = request.user
    next_url = _next_url(request)
    if not two_factor_required(user) or user.is_verified():
        return redirect(next_url)
    device = staff_device(user)
    enrolling = device is None
    if enrolling:
        device = staff_device_pending(user)
    form = CodeForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        code = form.cleaned_data["code"]
        if enrolling:
            verified = device if staff_device_confirm(device=device, code=code) else None
        else:
            verified = staff_code_verify(user=user, code=code)
        if verified is not None:
            otp_login(request, verified)
            if enrolling:
                messages.success(request, "Your authenticator app is enrolled.")
            return redirect(next_url)
        form.add_error("code", "This code is wrong or was already used.")
    context = {
        **admin.site.each_context(request),
        "title": "Enrol an authenticator app" if enrolling else "Enter your code",
        "form": form,
        "next": next_url,
        "enrolling": enrolling,
    }
    if enrolling:
        config_url = device.config_url
        image = qrcode.make(config_url, image_factory=qrcode.image.svg.SvgPathImage)
        context["secret"] = b32encode(device.bin_key).decode()
        context["qr_svg"] = mark_safe(image.to_string(encoding="unicode"))  # noqa: S308  (ours)
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "backoffice/two_factor.html", context, status=status)


@require_POST
def publish(request: HttpRequest) -> HttpResponse:
    """The clinic admin opens the patient pages of a clinic the platform created unpublished
    (who may change the clinic's settings may publish)."""
    from django.core.exceptions import PermissionDenied

    from tenants.services import clinic_publish

    if not request.user.has_perm("practice.change_clinicsettings"):
        raise PermissionDenied
    clinic_publish(clinic=request.tenant)
    messages.success(request, "Your patient pages are published: patients can sign up and book.")
    return redirect("admin:index")


def account_urls() -> list:
    wrap = admin.site.admin_view
    return [
        path(
            "sign-out-everywhere/",
            wrap(sign_out_everywhere),
            name="admin_sign_out_everywhere",
        ),
        path("two-factor/", wrap(two_factor), name="admin_two_factor"),
        path("publish/", wrap(publish), name="admin_publish"),
    ]

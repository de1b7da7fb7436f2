"""Sign up, sign in, sign out and password reset for the clinic's patients (Django's auth views).

Accounts live in the clinic's schema, so a patient of one clinic simply does not exist on
another clinic's host: the same email and password are refused there. Staff who sign in here
are sent to the admin.
"""

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse, reverse_lazy
from django.utils.encoding import force_bytes
from django.utils.http import (
    url_has_allowed_host_and_scheme,
    urlencode,
    urlsafe_base64_decode,
    urlsafe_base64_encode,
)
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.models import User
from accounts.services import user_sign_out_everywhere
from practice import services as practice_services

from . import forms
from .access import ADMIN_URL, is_staff_user
from .zones import in_viewer_zone


def _next_url(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if target and safe else default


class SignInView(auth_views.LoginView):
    template_name = "portal/auth/signin.html"
    form_class = forms.SignInForm
    extra_context = {"nav": "signin"}

    def get_success_url(self) -> str:
        if is_staff_user(self.request.user):
            return ADMIN_URL
        return super().get_success_url()

    def get_default_redirect_url(self) -> str:
        return reverse("portal:appointments")


class SignOutView(auth_views.LogoutView):
    next_page = reverse_lazy("portal:home")

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, _("You are signed out."))
        return response


@require_http_methods(["GET", "POST"])
@in_viewer_zone
def signup(request: HttpRequest) -> HttpResponse:
    """A patient account: creates the patient record, or links the clinic's existing one (see
    practice.services.patient_register), closed until the emailed link confirms the address.

    The page answers the same whether the email has an account or not ("check your email");
    the email says what happened: a link to confirm, or that an account already exists (sign
    in or reset the password). Errors shown on the form depend on what was typed only."""
    if request.user.is_authenticated:
        return redirect(ADMIN_URL if is_staff_user(request.user) else "portal:appointments")
    form = forms.SignUpWithIntakeForm(
        request.POST if request.method == "POST" else None,
        request.FILES if request.method == "POST" else None,
        initial={"timezone": request.viewer_zone.key},
        consent_texts=practice_services.consent_texts_current(),
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        email = User.objects.normalize_email(data["email"]).lower()
        patient = None
        if not User.objects.filter(email__iexact=email).exists():
            try:
                # The account and its intake (insurance, guardian, consents): all or nothing.
                patient = practice_services.patient_signup(
                    email=email,
                    password=data["password1"],
                    first_name=data["first_name"],
                    last_name=data["last_name"],
                    date_of_birth=data["date_of_birth"],
                    timezone=data["timezone"] or request.viewer_zone.key,
                    phone=data["phone"],
                    insurance=form.insurance(),
                    guardian=form.guardian(),
                    consents=data["consents"],
                    signed_name=data["signed_name"],
                    request=request,  # the audit trail's create (or link) of the record
                )
            except ValidationError as error:
                if "email" not in getattr(error, "error_dict", {}):
                    forms.apply_errors(form, error, rename={"password": "password1"})
                    return _signup_page(request, form)
                # else: the same email signed up a moment ago; it has an account now
        if patient is not None:
            _signup_mail(request, "confirm", email, patient.user, _next_url(request, ""))
        else:
            _signup_mail(request, "exists", email, None, "")
        return redirect("portal:signup-sent")
    return _signup_page(request, form)


def _signup_page(request: HttpRequest, form) -> HttpResponse:
    return render(
        request,
        "portal/auth/signup.html",
        {"form": form, "next": _next_url(request, ""), "nav": "signup"},
        status=400 if form.is_bound and form.errors else 200,
    )


def _signup_mail(request: HttpRequest, kind: str, email: str, user, next_url: str) -> None:
    """The sign-up's email: `confirm` (a link that opens the new account) or `exists`."""
    context = {
        "clinic_name": request.tenant.name,
        "email": email,
        "base": f"{request.scheme}://{request.get_host()}",
    }
    if user is not None:
        link = reverse(
            "portal:signup-confirm",
            kwargs={
                "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                "token": default_token_generator.make_token(user),
            },
        )
        context["link"] = link + (f"?{urlencode({'next': next_url})}" if next_url else "")
    send_mail(
        render_to_string(f"portal/auth/signup_{kind}_subject.txt", context).strip(),
        render_to_string(f"portal/auth/signup_{kind}_email.txt", context),
        None,
        [email],
    )


def signup_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/auth/signup_sent.html", {"nav": "signup"})


@require_http_methods(["GET"])
def signup_confirm(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """The emailed link: opens the account and signs in. It works once (signing in changes
    what the token is made of) and expires with the password-reset links."""
    try:
        user = User.objects.get(pk=int(urlsafe_base64_decode(uidb64)), is_active=False)
    except (ValueError, OverflowError, User.DoesNotExist):
        user = None
    if user is None or not default_token_generator.check_token(user, token):
        messages.error(request, _("This link has expired or was already used. Sign in."))
        return redirect("portal:signin")
    try:
        user = practice_services.patient_account_confirm(user=user)
    except ValidationError:
        return redirect("portal:signin")
    login(request, user, backend="accounts.backends.RoleBackend")
    name = user.full_name.split(" ")[0] if user.full_name else ""
    messages.success(request, _("Welcome, %(name)s! Your account is ready.") % {"name": name})
    return redirect(_next_url(request, reverse("portal:practitioners")))


class PasswordResetView(auth_views.PasswordResetView):
    """Sends the reset link through Django's email backend (the console in development). An
    account signed up but never confirmed gets one too: setting its password through the
    link proves the address and opens it (so a stranger's sign-up cannot lock the email's
    owner out)."""

    form_class = forms.PasswordResetForm
    template_name = "portal/auth/password_reset.html"
    email_template_name = "portal/auth/password_reset_email.txt"
    subject_template_name = "portal/auth/password_reset_subject.txt"
    success_url = reverse_lazy("portal:password-reset-sent")

    def form_valid(self, form):
        self.extra_email_context = {"clinic_name": self.request.tenant.name}
        return super().form_valid(form)


class PasswordResetSentView(auth_views.PasswordResetDoneView):
    template_name = "portal/auth/password_reset_sent.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "portal/auth/password_reset_confirm.html"
    success_url = reverse_lazy("portal:password-reset-done")

    def get_user(self, uidb64):
        # Django's view finds any user by id; the form below sent links to open accounts and
        # to unconfirmed patients' only.
        user = super().get_user(uidb64)
        if user is not None and not (
            user.is_active or practice_services.patient_account_unconfirmed(user)
        ):
            return None
        return user

    def form_valid(self, form):
        response = super().form_valid(form)
        if practice_services.patient_account_unconfirmed(form.user):
            practice_services.patient_account_confirm(user=form.user)
        return response


class PasswordResetDoneView(auth_views.PasswordResetCompleteView):
    template_name = "portal/auth/password_reset_done.html"


@require_http_methods(["POST"])
def sign_out_everywhere(request: HttpRequest) -> HttpResponse:
    """Ends every session and revokes every token of the signed-in account (a lost phone, a
    shared computer), this browser's session included."""
    if request.user.is_authenticated:
        user_sign_out_everywhere(user=request.user)
        logout(request)
        messages.info(request, _("You are signed out on every device."))
    return redirect("portal:signin")

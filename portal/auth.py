"""Sign up, sign in, sign out and password reset for the clinic's patients (Django's auth views).

Accounts live in the clinic's schema, so a patient of one clinic simply does not exist on
another clinic's host: the same email and password are refused there. Staff who sign in here
are sent to the admin.
"""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

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
    practice.services.patient_register), then signs in."""
    if request.user.is_authenticated:
        return redirect(ADMIN_URL if is_staff_user(request.user) else "portal:appointments")
    form = forms.SignUpForm(
        request.POST if request.method == "POST" else None,
        initial={"timezone": request.viewer_zone.key},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            patient = practice_services.patient_register(
                email=data["email"],
                password=data["password1"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                date_of_birth=data["date_of_birth"],
                timezone=data["timezone"] or request.viewer_zone.key,
                phone=data["phone"],
            )
        except ValidationError as error:
            forms.apply_errors(form, error, rename={"password": "password1"})
        else:
            login(request, patient.user)  # the one backend: accounts.backends.RoleBackend
            messages.success(
                request,
                _("Welcome, %(name)s! Your account is ready.") % {"name": patient.first_name},
            )
            return redirect(_next_url(request, reverse("portal:practitioners")))
    return render(
        request,
        "portal/auth/signup.html",
        {"form": form, "next": _next_url(request, ""), "nav": "signup"},
        status=400 if form.is_bound and form.errors else 200,
    )


class PasswordResetView(auth_views.PasswordResetView):
    """Sends the reset link through Django's email backend (the console in development)."""

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


class PasswordResetDoneView(auth_views.PasswordResetCompleteView):
    template_name = "portal/auth/password_reset_done.html"

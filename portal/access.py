"""Who may open the patient pages, and the error pages they get otherwise."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from clinic.errors import error_response
from clinic.permissions import STAFF_ROLES
from practice import selectors as practice_selectors

ADMIN_URL = "/admin/"


def is_staff_user(user) -> bool:
    """Anyone who works for the clinic (their place is the admin, not the patient pages)."""
    return bool(user.is_authenticated and (user.is_staff or user.roles & STAFF_ROLES))


def patient_required(view):
    """The signed-in patient's own pages: anonymous visitors go to sign in (and come back),
    staff go to the admin, an account without a patient record gets a 403 page that says why.
    Sets `request.patient`."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("portal:signin"))
        if is_staff_user(request.user):
            return redirect(ADMIN_URL)
        patient = practice_selectors.patient_get_for_user(user=request.user)
        if patient is None:
            return forbidden(
                request,
                code="no-patient-record",
                detail=_(
                    "Your account is not linked to a patient record yet. Please call the "
                    "clinic and they will link it."
                ),
            )
        request.patient = patient
        return view(request, *args, **kwargs)

    return wrapper


def forbidden(request: HttpRequest, *, code: str, detail: str) -> HttpResponse:
    return error_response(request, status=403, code=code, detail=detail)


def not_found(request: HttpRequest, detail: str = "") -> HttpResponse:
    return error_response(
        request, status=404, code="not-found", detail=detail or _("This page does not exist.")
    )


def bad_link(request: HttpRequest) -> HttpResponse:
    return error_response(
        request,
        status=400,
        code="bad-link",
        detail=_("This link is incomplete or out of date. Please pick a time again."),
    )

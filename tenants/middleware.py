from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import set_urlconf
from django.utils import timezone
from django_tenants.middleware.main import TenantMainMiddleware

from clinic.errors import error_response, wants_problem_json
from clinic.tenancy import tenant_connection

from .selectors import clinic_for_host, hostname_normalize

# Reachable on a suspended clinic: load balancers probe it.
SUSPENDED_ALLOWED_PATHS = ("/health/",)
# Not the patient pages: the staff's, the integrators', files and probes.
NOT_PATIENT_PAGES = ("/admin/", "/api/", "/static/", "/ws/", "/health/")


def clinic_unavailable(request: HttpRequest, clinic) -> HttpResponse | None:
    """What a suspended or unpublished clinic answers instead of the page asked for.

    Suspended: API clients get the 403 problem; staff (the admin) a 403 page with the
    platform's reason; patients a plain "temporarily unavailable" page (503) with no link to
    follow, as every page of the clinic answers the same. Unpublished: the patient pages say
    the clinic does not book online yet (404) while its staff set it up in the admin."""
    if clinic.is_platform:
        return None
    if not clinic.is_active and request.path not in SUSPENDED_ALLOWED_PATHS:
        detail = f"{clinic.name} is suspended. Contact the platform operator."
        if request.path.startswith("/api/") or wants_problem_json(request):
            return error_response(request, status=403, code="clinic-suspended", detail=detail)
        if request.path.startswith("/admin/"):
            context = {"title": f"{clinic.name} is suspended", "detail": detail,
                       "reason": clinic.suspended_reason}  # fmt: skip
            return render(request, "clinic_unavailable.html", context, status=403)
        context = {
            "title": f"{clinic.name} is temporarily unavailable",
            "detail": "Online booking and your appointments cannot be reached at the moment. "
            "Please try again later or contact the clinic by phone.",
        }
        response = render(request, "clinic_unavailable.html", context, status=503)
        response["Retry-After"] = "3600"
        return response
    if not clinic.is_published and not request.path.startswith(NOT_PATIENT_PAGES):
        context = {
            "title": f"{clinic.name} does not book online yet",
            "detail": "The clinic's pages open here soon. Please contact the clinic directly.",
        }
        return render(request, "clinic_unavailable.html", context, status=404)
    return None


class ClinicMiddleware(TenantMainMiddleware):
    """Selects the clinic's schema from the Host header.

    Unlike django-tenants' middleware: the host lookup is cached per process, an unknown host
    is a 404 page (problem JSON under /api/) instead of an exception, and a suspended clinic
    answers 403 everywhere.
    """

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        tenant_connection.set_schema_to_public()
        try:
            hostname = hostname_normalize(request.get_host())
        except DisallowedHost:
            return error_response(request, status=400, code="bad-host", detail="Host not allowed.")
        clinic = clinic_for_host(hostname)
        if clinic is None:
            set_urlconf(settings.PUBLIC_SCHEMA_URLCONF)
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF
            return error_response(
                request,
                status=404,
                code="unknown-clinic",
                detail=f"No clinic is served at {hostname}.",
            )
        if (closed := clinic_unavailable(request, clinic)) is not None:
            return closed
        clinic.domain_url = hostname
        request.tenant = clinic  # type: ignore[attr-defined]  # read by clinic.tenancy.request_tenant
        tenant_connection.set_tenant(clinic)
        self.setup_url_routing(request)
        return None


class AdminTimezoneMiddleware:
    """Clinic staff read and enter times in the clinic's zone throughout its admin (lists,
    date hierarchy, forms). Only there: API answers keep the offsets they were given."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        clinic = getattr(request, "tenant", None)
        if clinic is None or clinic.is_platform or not request.path.startswith("/admin/"):
            return self.get_response(request)
        with timezone.override(ZoneInfo(clinic.timezone)):
            return self.get_response(request)

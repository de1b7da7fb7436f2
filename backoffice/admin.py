"""Admin pages that combine several apps' data.

The patient page shows coverage (practice), authorizations with their utilisation bars
(authorizations) and upcoming appointments (scheduling). `practice` may not import the apps
built on it (docs/architecture.md: practice <- authorizations <- scheduling), so the
composition lives here, in an app that depends on all three and on which none depends: it
re-registers practice's PatientAdmin as a subclass (everything practice's own admin does still
holds) and narrows the patient and authorization lists to the rows the user's grants reach (a
practitioner: the patients they see).
"""

from django.contrib import admin
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django_otp.plugins.otp_totp.models import TOTPDevice

from authorizations.admin import AuthorizationAdmin, utilisation_bar
from authorizations.models import Authorization
from practice import formats
from practice.admin import LabelledTabularInline, PatientAdmin
from practice.models import Patient
from practice.selectors import rows_in_scope
from scheduling.admin import OutOfScopeIsForbidden, status_badge
from scheduling.models import Appointment

# Staff enrol their own authenticator (backoffice/account.py); a clinic admin resets a lost one
# from the user list. django-otp's device pages (secrets and QR codes) stay out of the admin.
if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)

admin.site.site_header = "Clinic back office"
# The header's shortcuts (templates/admin/base_site.html) and the index lead everywhere; the
# stock left sidebar took a fifth of a 1280 px screen from the lists.
admin.site.enable_nav_sidebar = False
admin.site.site_title = "Clinic back office"
admin.site.index_title = "Back office"

UPCOMING_SHOWN = 10


class AuthorizationInline(LabelledTabularInline):
    """Read-only here: an authorization is edited on its own page, with its lines."""

    model = Authorization
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["number", "payer", "period", "status", "utilisation"]
    readonly_fields = fields
    ordering = ["-end_date"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Authorization]:
        return (
            super()
            .get_queryset(request)
            .select_related("coverage__payer")
            .prefetch_related("lines__service_codes")
        )

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Payer")
    def payer(self, obj: Authorization) -> str:
        return obj.coverage.payer.name

    @admin.display(description="Valid")
    def period(self, obj: Authorization) -> str:
        return f"{formats.date_format(obj.start_date)} – {formats.date_format(obj.end_date)}"

    @admin.display(description="Units (used · scheduled · left)")
    def utilisation(self, obj: Authorization) -> str:
        lines = list(obj.lines.all())
        if not lines:
            return "—"
        return format_html_join(
            "",
            "<div class='bo-line'><small>{}</small>{}</div>",
            (
                (", ".join(code.code for code in line.service_codes.all()), utilisation_bar(line))
                for line in lines
            ),
        )


def _visits_in_scope(visits: QuerySet[Appointment], request: HttpRequest) -> QuerySet:
    return rows_in_scope(
        visits,
        user=request.user,
        permission="scheduling.view_appointment",
        practitioner="practitioner",
    )


class ClinicPatientAdmin(OutOfScopeIsForbidden, PatientAdmin):
    list_display = [*PatientAdmin.list_display[:-1], "next_visit", "is_active"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Patient]:
        upcoming = Appointment.objects.filter(
            patient=OuterRef("pk"),
            status__in=(Appointment.Status.BOOKED, Appointment.Status.CHECKED_IN),
            start__gte=timezone.now(),
        )
        upcoming = _visits_in_scope(upcoming, request)
        qs = (
            super()
            .get_queryset(request)
            .annotate(next_visit_at=Subquery(upcoming.order_by("start").values("start")[:1]))
        )
        return rows_in_scope(qs, user=request.user, permission="practice.view_patient", patient="")

    def get_inlines(self, request, obj=None):
        # On the add page the patient has no authorizations yet (and the form posts only
        # coverage, as practice's own admin expects).
        inlines = super().get_inlines(request, obj)
        return [*inlines, AuthorizationInline] if obj is not None else inlines

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return [("Upcoming appointments", {"fields": ("upcoming",)}), *fieldsets]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "upcoming"]

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            visits = Appointment.objects.filter(
                patient=obj,
                status__in=(Appointment.Status.BOOKED, Appointment.Status.CHECKED_IN),
                end__gte=timezone.now(),
            ).select_related("practitioner", "appointment_type", "location")
            visits = _visits_in_scope(visits, request)
            obj.upcoming_visits = list(visits.order_by("start")[: UPCOMING_SHOWN + 1])
            obj.may_book = request.user.has_perm("scheduling.book_appointment")
        return obj

    @admin.display(description="Next visit", ordering="next_visit_at")
    def next_visit(self, obj: Patient) -> str:
        moment = getattr(obj, "next_visit_at", None)
        return formats.datetime_format(moment, style="day") if moment else "—"

    @admin.display(description="Next visits")
    def upcoming(self, obj: Patient) -> str:
        visits = getattr(obj, "upcoming_visits", [])
        changelist = reverse("admin:scheduling_appointment_changelist")
        links = format_html(
            '<a href="{}?patient__id__exact={}">All appointments of this patient</a>',
            changelist,
            obj.pk,
        )
        if getattr(obj, "may_book", False):
            board = reverse("scheduling_board")
            links = format_html('{} · <a href="{}">Book on the schedule board</a>', links, board)
        if not visits:
            return format_html("<p>None booked.</p><p>{}</p>", links)
        rows = format_html_join(
            "",
            "<tr><td><a href='{}'>{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    reverse("admin:scheduling_appointment_change", args=[visit.pk]),
                    formats.datetime_format(visit.start, style="day"),
                    visit.practitioner.display_name,
                    visit.appointment_type.name,
                    status_badge(visit.status, visit.get_status_display()),
                )
                for visit in visits[:UPCOMING_SHOWN]
            ),
        )
        more = " …and more." if len(visits) > UPCOMING_SHOWN else ""
        return format_html(
            "<table class='bo-upcoming'><thead><tr><th>When</th><th>Practitioner</th>"
            "<th>Visit</th><th>Status</th></tr></thead><tbody>{}</tbody></table><p>{}{}</p>",
            rows,
            more,
            links,
        )


class ClinicAuthorizationAdmin(OutOfScopeIsForbidden, AuthorizationAdmin):
    def get_queryset(self, request: HttpRequest) -> QuerySet[Authorization]:
        return rows_in_scope(
            super().get_queryset(request),
            user=request.user,
            permission="authorizations.view_authorization",
            patient="patient",
        )


admin.site.unregister(Patient)
admin.site.register(Patient, ClinicPatientAdmin)
admin.site.unregister(Authorization)
admin.site.register(Authorization, ClinicAuthorizationAdmin)

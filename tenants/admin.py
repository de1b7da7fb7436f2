"""The platform admin: a separate AdminSite on the bare base domain (public schema)."""

import zoneinfo

from axes.models import AccessAttempt
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import AdminSite
from django.contrib.auth.password_validation import validate_password
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html

from accounts.admin import SignInFailureAdmin, UserAdmin
from accounts.models import User
from clinic.api import answer_stats, answer_stats_reset
from clinic.resilience import RedisUnavailableError

from . import services
from .models import Clinic, Domain


class PlatformAdminSite(AdminSite):
    site_header = "Clinic platform"
    site_title = "Clinic platform"
    index_title = "Clinics and operators"

    def has_permission(self, request: HttpRequest) -> bool:
        # Only superusers of the public schema operate the platform.
        return bool(request.user.is_active and request.user.is_superuser)

    def get_urls(self):
        page = self.admin_view(self.answer_cache_view)
        return [path("answer-cache/", page, name="answer_cache"), *super().get_urls()]

    def answer_cache_view(self, request: HttpRequest) -> HttpResponse:
        """The answer cache's hits, misses and hit rate per clinic and kind (the page of
        `/answer-cache/`'s JSON), and its resets: one clinic's, or every clinic's."""
        try:
            if request.method == "POST":
                schema = request.POST.get("clinic") or None
                removed = answer_stats_reset(schema, operator=request.user)
                what = f"of {schema}" if schema else "of every clinic"
                messages.success(request, f"Reset the statistics {what} ({removed} counters).")
                return redirect(request.path)
            stats = answer_stats()
        except RedisUnavailableError:
            messages.error(request, "Redis did not answer: try again.")
            stats = None
        rows = [
            {"clinic": schema, "kind": kind, **row}
            for schema, kinds in (stats["clinics"] if stats else {}).items()
            for kind, row in sorted(kinds.items())
        ]
        context = {
            **self.each_context(request),
            "title": "Answer cache",
            "stats": stats,
            "rows": rows,
        }
        return TemplateResponse(request, "platform/answer_cache.html", context)


platform_site = PlatformAdminSite(name="platform")

TIMEZONE_CHOICES = sorted((zone, zone) for zone in zoneinfo.available_timezones())


class ClinicCreateForm(forms.ModelForm):
    timezone = forms.ChoiceField(choices=TIMEZONE_CHOICES, initial="UTC")
    admin_email = forms.EmailField(help_text="The clinic's first administrator.")
    admin_password = forms.CharField(
        widget=forms.PasswordInput, min_length=12, help_text="At least 12 characters."
    )

    class Meta:
        model = Clinic
        fields = ["slug", "name", "timezone"]

    def clean_admin_password(self) -> str:
        password = self.cleaned_data["admin_password"]
        validate_password(password)
        return password

    def save(self, commit: bool = True) -> Clinic:
        # Provisioning is a service (clone the template, roles, first admin), not a row insert.
        data = self.cleaned_data
        self.instance = services.clinic_create(
            slug=data["slug"],
            name=data["name"],
            timezone=data["timezone"],
            admin=services.ClinicAdminSpec(
                email=data["admin_email"], password=data["admin_password"]
            ),
            published=False,  # its admin publishes the patient pages once they are set up
        )
        return self.instance

    def save_m2m(self) -> None:
        pass


class SuspendForm(forms.Form):
    reason = forms.CharField(
        max_length=300, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), strip=True
    )


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Clinic, site=platform_site)
class ClinicAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "timezone",
        "is_active",
        "suspended_reason",
        "published",
        "domain_list",
        "created_at",
    ]
    list_filter = ["is_active", "timezone"]
    search_fields = ["name", "slug", "domains__domain"]
    ordering = ["name"]
    actions = ["suspend", "reactivate"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Clinic]:
        return (
            super().get_queryset(request).exclude(schema_name="public").prefetch_related("domains")
        )

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ClinicCreateForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["slug", "name", "timezone", "admin_email", "admin_password"]
        return [
            "slug",
            "name",
            "timezone",
            "is_active",
            "suspended_reason",
            "suspended_at",
            "published_at",
            "schema_name",
            "created_at",
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            "slug",
            "schema_name",
            "created_at",
            "is_active",
            "suspended_reason",
            "suspended_at",
            "published_at",
        ]

    @admin.display(description="Published", boolean=True)
    def published(self, obj: Clinic) -> bool:
        return obj.is_published

    def get_inlines(self, request, obj=None):
        return [DomainInline] if obj else []

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
        # New clinics were provisioned by ClinicCreateForm.save().

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a clinic with history is suspended, never deleted from here

    @admin.display(description="Domains")
    def domain_list(self, obj: Clinic) -> str:
        """Every domain, the primary one linked to the clinic's own admin."""
        domains = sorted(obj.domains.all(), key=lambda d: (not d.is_primary, d.domain))
        if not domains:
            return "—"
        port = "" if settings.CLINIC_HTTP_PORT in (80, 443) else f":{settings.CLINIC_HTTP_PORT}"
        primary, others = domains[0], domains[1:]
        link = format_html('<a href="//{}{}/admin/">{}</a>', primary.domain, port, primary.domain)
        if not others:
            return link
        return format_html("{}, {}", link, ", ".join(d.domain for d in others))

    @admin.action(description="Suspend selected clinics (asks for a reason, then confirms)")
    def suspend(self, request: HttpRequest, queryset: QuerySet[Clinic]):
        """A confirmation page with the reason the clinic's staff will read; suspends only
        when that page is posted with a reason."""
        confirmed = request.POST.get("post") == "yes"
        form = SuspendForm(request.POST if confirmed else None)
        if confirmed and form.is_valid():
            for clinic in queryset:
                services.clinic_suspend(clinic=clinic, reason=form.cleaned_data["reason"])
            self.message_user(request, f"Suspended {queryset.count()} clinic(s).", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Suspend clinics?",
            "queryset": queryset,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "platform/suspend_confirm.html", context)

    @admin.action(description="Reactivate selected clinics")
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Clinic]) -> None:
        for clinic in queryset:
            services.clinic_reactivate(clinic=clinic)
        self.message_user(request, f"Reactivated {queryset.count()} clinic(s).", messages.SUCCESS)


platform_site.register(User, UserAdmin)
platform_site.register(AccessAttempt, SignInFailureAdmin)

__all__ = ["platform_site"]

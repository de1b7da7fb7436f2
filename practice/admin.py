"""The clinic admin (`https://<clinic>.<host>/admin/`) for the practice directory.

Access follows the grants (practice/grants.py, through `user.has_perm`): the front desk edits
patients and coverage, the clinic admin edits practitioners, payers, service codes,
locations, specialties and the clinic's settings; practitioners and billers view what their
work needs. Admin forms validate with the model's `full_clean()`, the same rules as the
services. Nothing with history is deleted here: the "deactivate" actions go through the
services instead.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from . import selectors, services
from .models import (
    ClinicSettings,
    Coverage,
    Location,
    Patient,
    Payer,
    Practitioner,
    ServiceCode,
    Specialty,
)


class SoftDeleteAdmin(admin.ModelAdmin):
    """No delete (records with history are deactivated); deactivate / reactivate actions
    call the entity's services."""

    entity: str
    actions = ["deactivate_selected", "reactivate_selected"]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def _set_active(self, request: HttpRequest, queryset: QuerySet, verb: str) -> None:
        service = getattr(services, f"{self.entity}_{verb}")
        count = 0
        for obj in queryset:
            service(**{self.entity: obj})
            count += 1
        self.message_user(request, f"{verb.capitalize()}d {count} record(s).", messages.SUCCESS)

    @admin.action(description="Deactivate selected", permissions=["change"])
    def deactivate_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_active(request, queryset, "deactivate")

    @admin.action(description="Reactivate selected", permissions=["change"])
    def reactivate_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_active(request, queryset, "reactivate")


@admin.register(Location)
class LocationAdmin(SoftDeleteAdmin):
    entity = "location"
    list_display = ["name", "timezone", "phone", "is_active"]
    list_filter = ["is_active", "timezone"]
    search_fields = ["name", "address", "phone"]
    ordering = ["name"]
    readonly_fields = ["is_active"]


@admin.register(Specialty)
class SpecialtyAdmin(SoftDeleteAdmin):
    entity = "specialty"
    list_display = ["name", "slug", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    ordering = ["name"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["is_active"]


@admin.register(Practitioner)
class PractitionerAdmin(SoftDeleteAdmin):
    entity = "practitioner"
    list_display = [
        "display_name",
        "title",
        "npi",
        "specialty_names",
        "rating_average",
        "is_verified",
        "accepts_new_patients",
        "offers_telehealth",
        "is_active",
    ]
    list_filter = [
        "is_active",
        "is_verified",
        "accepts_new_patients",
        "offers_telehealth",
        "specialties",
        "locations",
    ]
    search_fields = ["display_name", "title", "npi", "user__email"]
    ordering = ["display_name", "id"]
    autocomplete_fields = ["user", "specialties", "locations"]
    readonly_fields = ["is_active", "created_at"]
    fieldsets = (
        (None, {"fields": ("display_name", "title", "npi", "user", "timezone")}),
        ("Directory", {"fields": ("specialties", "languages", "locations", "bio")}),
        (
            "Status",
            {
                "fields": (
                    "is_verified",
                    "accepts_new_patients",
                    "offers_telehealth",
                    "rating_average",
                    "rating_count",
                    "is_active",
                    "created_at",
                )
            },
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Practitioner]:
        return (
            super().get_queryset(request).defer("search_document").prefetch_related("specialties")
        )

    @admin.display(description="Specialties")
    def specialty_names(self, obj: Practitioner) -> str:
        return ", ".join(specialty.name for specialty in obj.specialties.all())


class CoverageInline(admin.TabularInline):
    model = Coverage
    extra = 0
    can_delete = False
    autocomplete_fields = ["payer"]
    fields = [
        "payer",
        "member_id",
        "group_number",
        "priority",
        "effective_from",
        "effective_to",
        "copay_amount",
        "is_active",
    ]
    ordering = ["priority", "-effective_from"]
    readonly_fields = ["is_active"]


@admin.register(Patient)
class PatientAdmin(SoftDeleteAdmin):
    entity = "patient"
    list_display = [
        "last_name",
        "first_name",
        "date_of_birth",
        "email",
        "phone",
        "preferred_language",
        "is_active",
    ]
    list_display_links = ["last_name", "first_name"]
    list_filter = ["is_active", "sex", "preferred_language"]
    search_fields = ["last_name", "first_name", "email", "phone", "user__email"]
    ordering = ["last_name", "first_name", "id"]
    autocomplete_fields = ["user"]
    readonly_fields = ["is_active", "created_at"]
    date_hierarchy = "created_at"
    inlines = [CoverageInline]
    fieldsets = (
        (None, {"fields": ("first_name", "last_name", "date_of_birth", "sex", "user")}),
        ("Contact", {"fields": ("email", "phone", "preferred_language", "timezone")}),
        (
            "Address",
            {
                "fields": (
                    "address_line1",
                    "address_line2",
                    "city",
                    "state",
                    "postal_code",
                    "country",
                )
            },
        ),
        ("Status", {"fields": ("is_active", "created_at")}),
    )


@admin.register(Payer)
class PayerAdmin(SoftDeleteAdmin):
    entity = "payer"
    list_display = ["name", "edi_payer_id", "claim_filing_code", "is_active"]
    list_filter = ["is_active", "claim_filing_code"]
    search_fields = ["name", "edi_payer_id"]
    ordering = ["name"]
    readonly_fields = ["is_active"]


@admin.register(Coverage)
class CoverageAdmin(SoftDeleteAdmin):
    entity = "coverage"
    list_display = [
        "patient",
        "payer",
        "member_id",
        "priority",
        "effective_from",
        "effective_to",
        "is_active",
    ]
    list_select_related = ["patient", "payer"]
    list_filter = ["is_active", "priority", "payer"]
    search_fields = ["member_id", "group_number", "patient__last_name", "payer__name"]
    ordering = ["patient__last_name", "patient__first_name", "priority"]
    autocomplete_fields = ["patient", "payer"]
    readonly_fields = ["is_active"]


@admin.register(ServiceCode)
class ServiceCodeAdmin(SoftDeleteAdmin):
    entity = "service_code"
    list_display = ["code", "label", "unit_minutes", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["code", "label"]
    ordering = ["code"]
    readonly_fields = ["is_active"]


@admin.register(ClinicSettings)
class ClinicSettingsAdmin(admin.ModelAdmin):
    """One row per clinic: the list goes straight to it; it is never added or deleted."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        settings = selectors.clinic_settings_get()
        return HttpResponseRedirect(
            reverse("admin:practice_clinicsettings_change", args=[settings.pk])
        )

"""The platform operator's usage page (public admin): every clinic's usage by day, read-only."""

from django.contrib import admin
from django.http import HttpRequest

from tenants.admin import platform_site

from .models import ClinicPlan, UsageDay


@admin.register(UsageDay, site=platform_site)
class UsageDayAdmin(admin.ModelAdmin):
    list_display = ("day", "schema_name", "kind", "subject", "group", "count")
    list_filter = ("kind", "day", "schema_name")
    search_fields = ("schema_name", "subject", "group")
    date_hierarchy = "day"
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(ClinicPlan, site=platform_site)
class ClinicPlanAdmin(admin.ModelAdmin):
    """A clinic's API rate (all its clients together, per minute); a clinic without one has
    the deployment's API_CLINIC_RATE_PER_MINUTE. Processes see a change within 30 s."""

    list_display = ("schema_name", "api_requests_per_minute")
    search_fields = ("schema_name",)

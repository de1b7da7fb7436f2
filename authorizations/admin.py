from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import DateField, ExpressionWrapper, F, QuerySet
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from clinic.errors import ApplicationError

from . import services
from .models import Authorization, AuthorizationLine, UnitReservation
from .selectors import LIVE, authorizations_over_threshold


def utilisation_bar(line: AuthorizationLine) -> str:
    used = 100 * line.units_used / line.units_authorized if line.units_authorized else 0
    scheduled = 100 * line.units_scheduled / line.units_authorized if line.units_authorized else 0
    return format_html(
        '<div title="{} used, {} scheduled, {} left of {}" style="width:12rem;height:.8rem;'
        'background:#e5e7eb;border-radius:4px;overflow:hidden;display:flex">'
        '<span style="width:{}%;background:#2563eb"></span>'
        '<span style="width:{}%;background:#93c5fd"></span></div>'
        "<small>{} / {} units ({}%)</small>",
        line.units_used,
        line.units_scheduled,
        line.units_remaining,
        line.units_authorized,
        round(used, 1),
        round(scheduled, 1),
        line.units_used + line.units_scheduled,
        line.units_authorized,
        line.percent_used,
    )


class AlertFilter(admin.SimpleListFilter):
    title = "alerts"
    parameter_name = "alert"

    def lookups(self, request, model_admin):
        return [
            ("threshold", "At or above threshold"),
            ("expiring", "Expiring soon (within its alert window)"),
        ]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        if self.value() == "threshold":
            return queryset.filter(pk__in=authorizations_over_threshold().values("pk"))
        if self.value() == "expiring":
            # The same rule as selectors.authorization_alerts: each authorization's own
            # `alert_days_before_expiry` (date - integer is a date in PostgreSQL).
            today = timezone.localdate()
            alert_from = ExpressionWrapper(
                F("end_date") - F("alert_days_before_expiry"), output_field=DateField()
            )
            return queryset.annotate(alert_from=alert_from).filter(
                status__in=LIVE, end_date__gte=today, alert_from__lte=today
            )
        return queryset


class LineForm(forms.ModelForm):
    class Meta:
        model = AuthorizationLine
        fields = ["service_codes", "units_authorized", "weekly_cap"]

    def clean_units_authorized(self) -> int:
        units = self.cleaned_data["units_authorized"]
        if self.instance.pk:
            current = AuthorizationLine.objects.get(pk=self.instance.pk)
            taken = current.units_scheduled + current.units_used
            if units < taken:
                raise forms.ValidationError(f"{taken} units are already scheduled or used.")
        return units


class LineInline(admin.TabularInline):
    model = AuthorizationLine
    form = LineForm
    extra = 0
    fields = ["service_codes", "units_authorized", "weekly_cap", "utilisation"]
    readonly_fields = ["utilisation"]
    filter_horizontal = ["service_codes"]

    @admin.display(description="Utilisation")
    def utilisation(self, obj: AuthorizationLine) -> str:
        return utilisation_bar(obj) if obj.pk else "—"


@admin.register(Authorization)
class AuthorizationAdmin(admin.ModelAdmin):
    list_display = ["number", "patient", "payer", "start_date", "end_date", "status", "usage"]
    list_filter = [AlertFilter, "status", "coverage__payer"]
    search_fields = ["number", "patient__last_name", "patient__first_name"]
    date_hierarchy = "end_date"
    raw_id_fields = ["patient", "coverage"]
    inlines = [LineInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("patient", "coverage__payer")
            .prefetch_related("lines")
        )

    @admin.display(description="Payer")
    def payer(self, obj: Authorization) -> str:
        return obj.coverage.payer.name

    @admin.display(description="Units")
    def usage(self, obj: Authorization) -> str:
        lines = list(obj.lines.all())
        if not lines:
            return "—"
        return format_html_join("", "{}", ((utilisation_bar(line),) for line in lines))

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # cancel instead: the ledger keeps its history

    def save_formset(self, request, form, formset, change):
        """Existing lines change only their limits, through the service (the counters belong
        to the ledger); new lines are plain inserts."""
        if formset.model is not AuthorizationLine:
            return super().save_formset(request, form, formset, change)
        for line in formset.save(commit=False):
            if line.pk is None:
                line.save()
                continue
            try:
                services.authorization_line_limits_set(
                    line=line, units_authorized=line.units_authorized, weekly_cap=line.weekly_cap
                )
            except ApplicationError as error:  # a reservation won the race since the check
                transaction.set_rollback(True)
                self.message_user(request, f"Nothing was saved: {error.detail}", messages.ERROR)
                return None
        formset.save_m2m()
        return None


@admin.register(UnitReservation)
class UnitReservationAdmin(admin.ModelAdmin):
    """The ledger, read-only: every unit explained."""

    list_display = ["created_at", "line", "units", "state", "service_date", "reference"]
    list_filter = ["state"]
    search_fields = ["reference", "line__authorization__number"]
    date_hierarchy = "service_date"
    list_select_related = ["line__authorization"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

"""billing's admin pages: the no-show and late-cancel policy (per visit type, or one for
every type) and the fees it charged, which staff waive with a reason (an action whose reason
field sits beside the action menu). The fees are written by the services only."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError

from audit.mixins import AuditedAdminMixin
from clinic.errors import ApplicationError
from practice.selectors import rows_in_scope

from .. import visit_fees
from ..models import MissedVisitFee, MissedVisitPolicy


@admin.register(MissedVisitPolicy)
class MissedVisitPolicyAdmin(admin.ModelAdmin):
    list_display = ("__str__", "no_show_fee", "late_cancel_fee", "grace_minutes")
    list_select_related = ("appointment_type",)


class WaiveForm(ActionForm):
    reason = forms.CharField(required=False, max_length=300, label="Reason (to waive)")


@admin.register(MissedVisitFee)
class MissedVisitFeeAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Fees charged: filter by status and kind; "Waive selected fees" with the reason typed
    beside the action menu (a reversal entry each)."""

    list_display = ("created_at", "kind", "amount", "status", "patient", "appointment", "reason")
    list_filter = ("status", "kind")
    search_fields = ("=patient__id", "patient__last_name", "=appointment__id")
    list_select_related = ("patient", "appointment")
    readonly_fields = [f.name for f in MissedVisitFee._meta.fields]
    action_form = WaiveForm
    actions = ["waive_selected"]

    def get_queryset(self, request):
        return rows_in_scope(
            super().get_queryset(request),
            user=request.user,
            permission="billing.view_missedvisitfee",
            patient="patient",
        )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_waive_permission(self, request) -> bool:
        return request.user.has_perm("billing.waive_missedvisitfee")

    @admin.action(description="Waive selected fees (type the reason)", permissions=["waive"])
    def waive_selected(self, request, queryset):
        reason = request.POST.get("reason", "")
        done, refused = 0, []
        for fee in queryset:
            try:
                visit_fees.fee_waive(fee=fee, reason=reason, by=request.user)
                done += 1
            except ValidationError as error:
                refused.append(" ".join(error.messages))
                break  # the same missing reason for every row
            except ApplicationError as error:
                refused.append(f"{fee}: {error.detail}")
        if done:
            self.message_user(request, f"{done} fee(s) waived.", messages.SUCCESS)
        if refused:
            self.message_user(request, " · ".join(refused[:10]), messages.WARNING)

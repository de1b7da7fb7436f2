"""billing's admin pages: the billing profile, payer rules, fee schedules with their fees,
episodes with their ranked diagnoses, charges (read-only, voided through the service) and the
unbilled visits page with why each visit cannot be charged and a "Create charges" button.

Writes go through `billing.charges` where a rule lives there (diagnoses ranked and checked, a
charge made or voided with its ledger entries); a practitioner's grants reach only the episodes
of the patients they see and the charges of their own visits (`rows_in_scope`)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from audit import services as audit
from audit.mixins import AuditedAdminMixin
from clinic.errors import ApplicationError
from practice import formats
from practice.selectors import rows_in_scope
from scheduling.admin import OutOfScopeIsForbidden
from scheduling.models import Appointment

from .. import charges as services
from ..models import (
    BillingProfile,
    Charge,
    DiagnosisCode,
    Episode,
    EpisodeDiagnosis,
    Fee,
    FeeSchedule,
    PayerRules,
)


@admin.register(BillingProfile)
class BillingProfileAdmin(admin.ModelAdmin):
    """The clinic as billing provider: one row (id 1)."""

    list_display = ["__str__", "npi", "tax_id", "submitter_id", "receiver_id", "production"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the one row is made when its page is first opened

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        """One row: its page (made on first use, as `ClinicSettings.load` does)."""
        if request.user.has_perm("billing.change_billingprofile"):
            BillingProfile.objects.get_or_create(pk=1)
            return HttpResponseRedirect(reverse("admin:billing_billingprofile_change", args=[1]))
        return super().changelist_view(request, extra_context)


@admin.register(PayerRules)
class PayerRulesAdmin(admin.ModelAdmin):
    list_display = ["payer", "timely_filing_days", "requires_authorization"]
    list_select_related = ["payer"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class FeeInline(admin.TabularInline):
    model = Fee
    extra = 1
    fields = ["service_code", "modifiers", "charge_per_unit", "allowed_per_unit"]


class FeeScheduleForm(forms.ModelForm):
    class Meta:
        model = FeeSchedule
        fields = ["name", "payer", "effective_from", "effective_to"]

    def clean(self):
        # The exclusion constraint, reported on the field (the service says it the same way);
        # the constraint itself still holds a race.
        data = super().clean()
        start, end = data.get("effective_from"), data.get("effective_to")
        if start is None:
            return data
        others = FeeSchedule.objects.filter(payer=data.get("payer")).exclude(pk=self.instance.pk)
        for other in others:
            if (other.effective_to is None or other.effective_to >= start) and (
                end is None or other.effective_from <= end
            ):
                self.add_error("effective_from", f"These dates overlap {other.name!r}.")
                break
        return data


@admin.register(FeeSchedule)
class FeeScheduleAdmin(admin.ModelAdmin):
    form = FeeScheduleForm
    list_display = ["name", "payer_name", "effective_from", "effective_to", "fee_count"]
    list_filter = ["payer"]
    date_hierarchy = "effective_from"
    inlines = [FeeInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[FeeSchedule]:
        return super().get_queryset(request).select_related("payer").prefetch_related("fees")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # charges point at its fees: end it instead

    @admin.display(description="Payer", ordering="payer__name")
    def payer_name(self, obj: FeeSchedule) -> str:
        return obj.payer.name if obj.payer else "Clinic default (self-pay)"

    @admin.display(description="Fees")
    def fee_count(self, obj: FeeSchedule) -> int:
        return len(obj.fees.all())


class DiagnosisInline(admin.TabularInline):
    model = EpisodeDiagnosis
    extra = 1
    max_num = 12
    fields = ["rank", "code"]
    ordering = ["rank"]


class EpisodeForm(forms.ModelForm):
    class Meta:
        model = Episode
        fields = [
            "patient",
            "coverage",
            "title",
            "referring_provider_name",
            "referring_provider_npi",
            "supervising",
            "start_date",
            "end_date",
            "status",
        ]

    def clean(self):
        data = super().clean()
        coverage, patient = data.get("coverage"), data.get("patient")
        if coverage is not None and patient is not None and coverage.patient_id != patient.pk:
            self.add_error("coverage", "This coverage is another patient's.")
        return data


@admin.register(Episode)
class EpisodeAdmin(AuditedAdminMixin, OutOfScopeIsForbidden, admin.ModelAdmin):
    """Episodes of care; diagnoses are ranked inline (rank 1 principal) and checked as the API
    checks them (format, the clinic's code list when loaded)."""

    form = EpisodeForm
    list_display = ["patient", "title", "diagnoses_shown", "coverage", "start_date", "status"]
    list_filter = ["status"]
    search_fields = ["patient__last_name", "patient__first_name", "title", "diagnoses__code"]
    raw_id_fields = ["patient", "coverage"]
    inlines = [DiagnosisInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Episode]:
        qs = (
            super()
            .get_queryset(request)
            .select_related("patient", "coverage__payer")
            .prefetch_related("diagnoses")
        )
        return rows_in_scope(
            qs, user=request.user, permission="billing.view_episode", patient="patient"
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # charges point at it: close it instead

    @admin.display(description="Diagnoses")
    def diagnoses_shown(self, obj: Episode) -> str:
        return ", ".join(d.code for d in obj.diagnoses.all()) or "— none: cannot be billed"

    def save_related(self, request, form, formsets, change):
        """The diagnoses through the service: ranked 1.. in the order of their ranks, each
        code normalised and checked; a refusal saves nothing and says why."""
        for formset in formsets:
            if formset.model is not EpisodeDiagnosis:
                continue
            kept = [
                f.cleaned_data
                for f in formset.forms
                if f.cleaned_data and f.cleaned_data.get("code") and not f.cleaned_data["DELETE"]
            ]
            codes = [row["code"] for row in sorted(kept, key=lambda r: r.get("rank") or 99)]
            if not codes:  # no diagnosis: allowed, and the unbilled list says so
                form.instance.diagnoses.all().delete()
                formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
                return
            try:
                services.episode_update(episode=form.instance, diagnoses=codes)
            except ValidationError as error:
                raise _Refused("; ".join(error.messages)) from error
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            return
        super().save_related(request, form, formsets, change)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except _Refused as refused:
            self.message_user(request, f"Nothing was saved: {refused}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class _Refused(Exception):
    pass


@admin.register(DiagnosisCode)
class DiagnosisCodeAdmin(admin.ModelAdmin):
    """The clinic's ICD-10-CM list (`manage.py billing_load_icd10`), read-only."""

    list_display = ["code", "description"]
    search_fields = ["code", "description"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class VoidForm(forms.Form):
    reason = forms.CharField(max_length=300)


@admin.register(Charge)
class ChargeAdmin(AuditedAdminMixin, OutOfScopeIsForbidden, admin.ModelAdmin):
    """Charges, made by the charge run and never typed in: read-only, voided through the
    service (its ledger entry reversed). The unbilled visits are one click away."""

    list_display = [
        "service_date",
        "patient",
        "code",
        "modifiers",
        "units",
        "amount",
        "payer_name",
        "status",
        "rendering",
    ]
    list_filter = ["status", "payer", "place_of_service", "service_date"]
    search_fields = ["patient__last_name", "patient__first_name", "authorization_number"]
    date_hierarchy = "service_date"
    list_select_related = ["patient", "service_code", "payer", "rendering"]
    actions = ["void_selected"]
    readonly_fields = [f.name for f in Charge._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Charge]:
        return rows_in_scope(
            super().get_queryset(request),
            user=request.user,
            permission="billing.view_charge",
            practitioner="rendering",
            patient="patient",
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the form is read-only; `change` is voiding, an action

    def has_void_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("billing.change_charge")

    @admin.display(description="Code", ordering="service_code__code")
    def code(self, obj: Charge) -> str:
        return obj.service_code.code

    @admin.display(description="Payer", ordering="payer__name")
    def payer_name(self, obj: Charge) -> str:
        return obj.payer.name if obj.payer else "Self-pay"

    @admin.action(description="Void selected charges…", permissions=["void"])
    def void_selected(self, request: HttpRequest, queryset: QuerySet[Charge]):
        """Asks for the reason first; each charge through `charge_void`, refusals reported."""
        form = VoidForm(request.POST if request.POST.get("confirm") else None)
        if form.is_bound and form.is_valid():
            done, refused = 0, []
            for charge in queryset:
                try:
                    services.charge_void(
                        charge=charge, reason=form.cleaned_data["reason"], by=request.user
                    )
                    audit.record(request, audit.UPDATE, charge, fields=["status", "void_reason"])
                    done += 1
                except ApplicationError as error:
                    refused.append(f"{charge}: {error.detail}")
            if done:
                self.message_user(request, f"{done} charge(s) voided.", messages.SUCCESS)
            if refused:
                self.message_user(request, " · ".join(refused[:10]), messages.WARNING)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Void charges",
            "opts": self.model._meta,
            "queryset": queryset,
            "form": form,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/billing/charge/void_selected.html", context)

    def get_urls(self):
        own = [
            path(
                "unbilled/",
                self.admin_site.admin_view(self.unbilled_view),
                name="billing_charge_unbilled",
            )
        ]
        return own + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra = {**(extra_context or {}), "unbilled_url": reverse("admin:billing_charge_unbilled")}
        return super().changelist_view(request, extra)

    def unbilled_view(self, request: HttpRequest) -> HttpResponse:
        """Completed visits without a charge, with every reason each cannot be charged, and
        "Create charges" for those (selected, or all) that can."""
        if not request.user.has_perm("billing.view_charge"):
            raise PermissionDenied
        visits = rows_in_scope(
            Appointment.objects.all(),
            user=request.user,
            permission="billing.view_charge",
            practitioner="practitioner",
            patient="patient",
        )
        may_create = request.user.has_perm("billing.add_charge")
        if request.method == "POST":
            if not may_create:
                raise PermissionDenied
            ids = [int(v) for v in request.POST.getlist("appointment") if v.isdigit()]
            ids = list(visits.filter(pk__in=ids).values_list("pk", flat=True))
            result = services.charges_create_for_completed(by=request.user, appointment_ids=ids)
            for charge in Charge.objects.filter(pk__in=result.charges):
                audit.record(request, audit.CREATE, charge)
            level = messages.SUCCESS if result.created else messages.WARNING
            self.message_user(
                request,
                f"{result.created} visit(s) charged; {result.skipped} cannot be yet (see why)."
                + (f" {len(result.failed)} refused." if result.failed else ""),
                level,
            )
            return HttpResponseRedirect(request.path)
        items = services.unbilled_visits(visits=visits)
        for item in items:
            audit.record(request, audit.READ, item.appointment, label="unbilled visits")
        rows = [
            {
                "item": item,
                "when": formats.datetime_format(item.appointment.start, style="day"),
            }
            for item in items
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Unbilled visits",
            "opts": self.model._meta,
            "rows": rows,
            "billable": sum(1 for item in items if not item.reasons),
            "may_create": may_create,
        }
        return TemplateResponse(request, "admin/billing/charge/unbilled.html", context)

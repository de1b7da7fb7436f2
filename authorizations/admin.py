from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import DateField, ExpressionWrapper, F, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from audit import services as audit
from audit.mixins import AuditedAdminMixin
from clinic.errors import ApplicationError
from practice import formats
from practice.admin import LabelledTabularInline
from practice.models import Coverage
from practice.selectors import rows_in_scope

from . import services
from .models import Authorization, AuthorizationLine, AuthorizationRequest, UnitReservation
from .selectors import LIVE, authorizations_over_threshold


def utilisation_bar(line: AuthorizationLine) -> str:
    used = 100 * line.units_used / line.units_authorized if line.units_authorized else 0
    scheduled = 100 * line.units_scheduled / line.units_authorized if line.units_authorized else 0
    return format_html(
        '<div class="bo-usage" title="{} used, {} scheduled, {} left of {}" style="height:.8rem;'
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


class LineInline(LabelledTabularInline):
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
class AuthorizationAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["number", "patient", "payer", "period", "status", "usage"]
    list_filter = [AlertFilter, "status", "coverage__payer"]
    search_fields = ["number", "patient__last_name", "patient__first_name"]
    date_hierarchy = "end_date"
    # Searchable pickers (the patient's and coverage's admins search by name and member id)
    # instead of raw numeric ids.
    autocomplete_fields = ["patient", "coverage"]
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

    @admin.display(description="Valid", ordering="end_date")
    def period(self, obj: Authorization) -> str:
        return f"{formats.date_format(obj.start_date)} – {formats.date_format(obj.end_date)}"

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
class UnitReservationAdmin(AuditedAdminMixin, admin.ModelAdmin):
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


# --- The queue of requests for an assessment / authorization ------------------------------------


class DecideForm(forms.Form):
    """Approve (the authorization's number, dates and units for the requested code) or decline
    with a reason the patient reads."""

    number = forms.CharField(label="Authorization number", max_length=60, required=False)
    start_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    units_authorized = forms.IntegerField(label="Units authorized", min_value=1, required=False)
    weekly_cap = forms.IntegerField(label="Weekly cap (optional)", min_value=1, required=False)
    coverage: forms.ModelChoiceField = forms.ModelChoiceField(
        queryset=Coverage.objects.none(), required=False
    )
    reason = forms.CharField(
        label="Reason (to decline)",
        max_length=300,
        required=False,
        widget=forms.TextInput(attrs={"size": 80}),
    )

    def __init__(self, *args, patient, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["coverage"]
        field.queryset = patient.coverages.filter(is_active=True).select_related("payer")
        field.empty_label = None if field.queryset.exists() else "— none on file —"

    def approval_errors(self) -> None:
        for name in ("number", "start_date", "end_date", "units_authorized"):
            if not self.cleaned_data.get(name):
                self.add_error(name, "Needed to approve.")


@admin.register(AuthorizationRequest)
class AuthorizationRequestAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """The front desk's queue: patients' requests, oldest open first. Each is worked on its
    decide page: approve (creates the authorization) or decline with a reason."""

    list_display = ["requested_at", "patient", "code", "visit_name", "payer", "status", "work"]
    list_filter = ["status"]
    list_select_related = ["patient", "service_code", "coverage__payer"]
    search_fields = ["patient__last_name", "patient__first_name", "coverage__member_id"]
    ordering = ["requested_at", "id"]
    fields = readonly_fields = (
        "patient",
        "service_code",
        "visit_name",
        "coverage",
        "message",
        "status",
        "requested_at",
        "requested_by",
        "decided_at",
        "decided_by",
        "decline_reason",
        "authorization",
        "work",
    )

    def get_queryset(self, request):
        return rows_in_scope(
            super().get_queryset(request),
            user=request.user,
            permission="authorizations.view_authorizationrequest",
            patient="patient",
        )

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None and str(object_id).isdigit():
            if AuthorizationRequest.objects.filter(pk=object_id).exists():
                raise PermissionDenied  # there, but not this user's to see
        return obj

    def changelist_view(self, request, extra_context=None):
        if "status__exact" not in request.GET and not request.GET.get("q"):
            query = request.GET.copy()
            query["status__exact"] = AuthorizationRequest.Status.PENDING
            request.GET = query  # the queue opens on what is waiting
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request) -> bool:
        return False  # patients ask from their pages (or staff add the authorization itself)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Code", ordering="service_code__code")
    def code(self, obj: AuthorizationRequest) -> str:
        return obj.service_code.code

    @admin.display(description="Payer")
    def payer(self, obj: AuthorizationRequest) -> str:
        return obj.coverage.payer.name if obj.coverage else "— no coverage —"

    @admin.display(description="")
    def work(self, obj: AuthorizationRequest) -> str:
        if obj.status != AuthorizationRequest.Status.PENDING or obj.pk is None:
            return "—"
        url = reverse("admin:authorizations_authorizationrequest_decide", args=[obj.pk])
        return format_html('<a class="button" href="{}">Approve or decline…</a>', url)

    def get_urls(self):
        own = [
            path(
                "<int:pk>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="authorizations_authorizationrequest_decide",
            )
        ]
        return own + super().get_urls()

    def decide_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        found = self.get_queryset(request).filter(pk=pk).first()
        if found is None:
            raise PermissionDenied
        form = DecideForm(request.POST or None, patient=found.patient)
        change_url = reverse("admin:authorizations_authorizationrequest_change", args=[pk])
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                if "decline" in request.POST:
                    services.authorization_request_decline(
                        request=found, reason=data["reason"], by=request.user
                    )
                    audit.record(request, audit.UPDATE, found, fields=["status", "decline_reason"])
                    self.message_user(request, "The request is declined.", messages.SUCCESS)
                else:
                    form.approval_errors()
                    if not form.errors:
                        decided = services.authorization_request_approve(
                            request=found,
                            number=data["number"],
                            start_date=data["start_date"],
                            end_date=data["end_date"],
                            units_authorized=data["units_authorized"],
                            weekly_cap=data["weekly_cap"],
                            coverage=data["coverage"],
                            by=request.user,
                        )
                        assert decided.authorization is not None
                        audit.record(request, audit.CREATE, decided.authorization)
                        audit.record(request, audit.UPDATE, decided, fields=["status"])
                        self.message_user(
                            request,
                            f"Approved: authorization {decided.authorization.number} created.",
                            messages.SUCCESS,
                        )
            except ValidationError as error:
                for field, texts in error.message_dict.items():
                    for text in texts:
                        form.add_error(field if field in form.fields else None, text)
            except ApplicationError as error:
                form.add_error(None, error.detail)
            if not form.errors:
                return HttpResponseRedirect(
                    reverse("admin:authorizations_authorizationrequest_changelist")
                )
        if request.method == "GET":
            audit.record(request, audit.READ, found, label="decide page")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Authorization request from {found.patient}",
            "opts": self.model._meta,
            "found": found,
            "form": form,
            "change_url": change_url,
        }
        return TemplateResponse(
            request, "admin/authorizations/authorizationrequest_decide.html", context
        )

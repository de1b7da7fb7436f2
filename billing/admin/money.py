"""billing's admin pages: money. Remittances (upload an 835 to post it, the list, and each
one's detail: its claim payments, what was posted with every adjustment in plain English, the
unmatched ones with a "match to claim" form), payments (the front desk takes a payment or a
copay; a biller refunds) and the ledger, read-only, per patient.

Every page goes through billing's services (`posting`, `payments`): the admin never writes a
ledger entry itself. Pages that show a patient's money record what they show in the audit
trail (AuditedAdminMixin; a remittance's detail records each claim it shows).
"""

import uuid
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from audit import services as audit
from audit.mixins import AuditedAdminMixin
from billing.x12.reading import X12Refused
from billing.x12.reasons import explain, explain_provider_adjustment
from clinic.errors import ApplicationError
from practice.models import Patient

from .. import credits, ledger, payments, posting
from ..models import (
    Charge,
    Claim,
    LedgerEntry,
    Payment,
    Remittance,
    RemittanceClaim,
    WriteOffReason,
)

# --- Remittances -------------------------------------------------------------------------------


class UploadForm(forms.Form):
    file = forms.FileField(required=False, help_text="The 835 file from the clearinghouse.")
    x12 = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 8, "cols": 100}), label="or paste it"
    )

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload is not None:
            try:
                data["x12"] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise forms.ValidationError({"file": "Not UTF-8 text."}) from None
            data["file_name"] = upload.name
        if not data.get("x12"):
            raise forms.ValidationError("Choose an 835 file or paste one.")
        return data


class MatchForm(forms.Form):
    record = forms.IntegerField(widget=forms.HiddenInput)
    claim = forms.ModelChoiceField(
        Claim.objects.filter(status__in=posting.PAYABLE), help_text="Our claim it pays."
    )


CLAIM_FIELDS: tuple[str, ...] = (
    "patient_control_number",
    "claim",
    "status_code",
    "charge_amount",
    "paid_amount",
    "patient_responsibility",
    "payer_claim_number",
)


REMITTANCE_FIELDS: tuple[str, ...] = (
    "trace_number",
    "payer_identifier",
    "payer",
    "payment_amount",
    "payment_method",
    "payment_date",
    "file_name",
    "posted_at",
    "posted_by",
    "posting",
    "provider_level",
    "worklist",
)


class RemittanceClaimInline(admin.TabularInline):
    model = RemittanceClaim
    extra = 0
    can_delete = False
    fields = CLAIM_FIELDS
    readonly_fields = CLAIM_FIELDS

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Remittance)
class RemittanceAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = [
        "trace_number",
        "payer_identifier",
        "payer",
        "payment_amount",
        "payment_method",
        "payment_date",
        "posted_at",
    ]
    list_filter = ["payment_method", "payer"]
    search_fields = ["trace_number", "payer_identifier", "claims__patient_control_number"]
    date_hierarchy = "posted_at"
    inlines = [RemittanceClaimInline]
    fields = REMITTANCE_FIELDS
    readonly_fields = REMITTANCE_FIELDS

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # posted once, never edited

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="posted")
    def posting(self, obj: Remittance) -> str:
        entries = obj.ledger.select_related("claim_line__charge__service_code").order_by("id")
        rows = [
            (
                e.claim_id or "",
                e.claim_line.charge.service_code.code if e.claim_line else "",
                e.get_kind_display(),
                e.get_party_display(),
                e.amount,
                explain(e.group_code, e.reason_code, e.remark_codes) if e.reason_code else e.memo,
            )
            for e in entries
        ]
        if not rows:
            return "Nothing posted."
        body = format_html_join("", "<tr>{}</tr>", ((_cells(row),) for row in rows))
        return format_html(
            "<table><tr><th>claim</th><th>code</th><th>entry</th><th>party</th><th>amount</th>"
            "<th>why</th></tr>{}</table>",
            body,
        )

    @admin.display(description="provider-level adjustments (PLB)")
    def provider_level(self, obj: Remittance) -> str:
        rows = [
            (
                a.reason,
                a.reference or "—",
                a.amount,
                explain_provider_adjustment(a.reason, a.reference, a.amount),
                a.segment or "—",
            )
            for a in obj.provider_entries.order_by("id")
        ]
        if not rows:
            return "None: the payment is the claims' payments."
        body = format_html_join("", "<tr>{}</tr>", ((_cells(row),) for row in rows))
        return format_html(
            "<table><tr><th>reason</th><th>reference</th><th>amount</th><th>what</th>"
            "<th>segment</th></tr>{}</table><p>Posted to the clinic's account with the payer, "
            "not to a patient: payment = claims' payments − these amounts.</p>",
            body,
        )

    @admin.display(description="unmatched claim payments")
    def worklist(self, obj: Remittance) -> str:
        waiting = obj.claims.filter(claim__isnull=True)
        if not waiting.exists():
            return "None: every claim payment found its claim."
        return format_html(
            '<a href="{}">Match {} claim payment(s) to our claims</a>',
            reverse("admin:billing_remittance_match", args=[obj.pk]),
            waiting.count(),
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and request.method == "GET":
            for record in obj.claims.filter(claim__isnull=False).select_related("claim"):
                audit.record(request, audit.READ, record.claim)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        urls = [
            path(
                "<int:pk>/match/",
                self.admin_site.admin_view(self.match_view),
                name="billing_remittance_match",
            ),
        ]
        return urls + super().get_urls()

    def add_view(self, request: HttpRequest, form_url="", extra_context=None) -> HttpResponse:
        """The upload page: post an 835, or show why it was refused (nothing posted)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = UploadForm(request.POST or None, request.FILES or None)
        findings: list[str] = []
        if request.method == "POST" and form.is_valid():
            try:
                result = posting.remittance_post(
                    text=form.cleaned_data["x12"],
                    file_name=form.cleaned_data.get("file_name", ""),
                    by=request.user,
                )
            except X12Refused as refused:
                findings = [str(finding) for finding in refused.findings]
            else:
                first = result.remittances[0]
                if result.created:
                    self.message_user(request, f"Posted {first}.", messages.SUCCESS)
                else:
                    self.message_user(request, f"{first} was posted before.", messages.WARNING)
                return HttpResponseRedirect(
                    reverse("admin:billing_remittance_change", args=[first.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "Upload an 835 remittance",
            "opts": self.model._meta,
            "form": form,
            "findings": findings,
        }
        return TemplateResponse(request, "billing/admin/remittance_upload.html", context)

    def match_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The unmatched claim payments of a remittance, each with the claims it may pay."""
        if not request.user.has_perm("billing.add_remittance"):
            raise PermissionDenied
        remittance = get_object_or_404(Remittance, pk=pk)
        if request.method == "POST":
            form = MatchForm(request.POST)
            if form.is_valid():
                record = get_object_or_404(
                    RemittanceClaim, pk=form.cleaned_data["record"], remittance=remittance
                )
                try:
                    matched = posting.remittance_claim_match(
                        record=record, claim=form.cleaned_data["claim"], by=request.user
                    )
                except ApplicationError as error:
                    self.message_user(request, error.detail, messages.ERROR)
                else:
                    audit.record(request, audit.UPDATE, matched.claim)
                    self.message_user(request, f"Posted to {matched.claim}.", messages.SUCCESS)
            return HttpResponseRedirect(request.path)
        waiting = [
            (record, MatchForm(initial={"record": record.pk}))
            for record in remittance.claims.filter(claim__isnull=True)
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Match the claim payments of {remittance}",
            "opts": self.model._meta,
            "remittance": remittance,
            "waiting": waiting,
        }
        return TemplateResponse(request, "billing/admin/remittance_match.html", context)


def _cells(row) -> str:
    return format_html_join("", "<td>{}</td>", ((cell,) for cell in row))


# --- Payments ----------------------------------------------------------------------------------


class TakePaymentForm(forms.ModelForm):
    """The front desk's form: a payment (amount) or a visit's copay (its coverage's)."""

    amount = forms.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
        help_text="Leave empty for a copay: the coverage's copay is taken.",
    )

    class Meta:
        model = Payment
        fields = ["patient", "kind", "method", "amount", "appointment", "reference", "note"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "kind" in self.fields:  # the add form (a payment's own page is read-only)
            self.fields["kind"].choices = [
                (Payment.Kind.PAYMENT, "Payment"),
                (Payment.Kind.COPAY, "Copay"),
            ]
        if "method" in self.fields:
            self.fields["method"].choices = [(m.value, m.label) for m in payments.DESK_METHODS]

    def clean(self):
        data = super().clean()
        if data.get("kind") == Payment.Kind.COPAY:
            visit = data.get("appointment")
            if visit is None:
                self.add_error("appointment", "Name the visit the copay is for.")
            elif data.get("patient") and visit.patient_id != data["patient"].pk:
                self.add_error("appointment", "Not a visit of this patient.")
            elif not (coverage := payments.copay_coverage(visit)) or not coverage.copay_amount:
                self.add_error("appointment", "The patient's coverage has no copay that day.")
        elif not data.get("amount"):
            self.add_error("amount", "How much?")
        return data


class RefundForm(forms.Form):
    amount = forms.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"))
    reason = forms.CharField(required=False, max_length=300)


@admin.register(Payment)
class PaymentAdmin(AuditedAdminMixin, admin.ModelAdmin):
    form = TakePaymentForm
    list_display = [
        "received_at",
        "patient",
        "payer",
        "kind",
        "method",
        "amount",
        "status",
        "reference",
    ]
    list_filter = ["kind", "method", "status"]
    search_fields = ["patient__last_name", "patient__first_name", "reference"]
    date_hierarchy = "received_at"
    autocomplete_fields = ["patient"]
    raw_id_fields = ["appointment"]
    readonly_fields = [
        "payer",
        "remittance",
        "status",
        "processor",
        "processor_id",
        "refund_of",
        "received_at",
        "taken_by",
        "refund_link",
        "ledger_entries",
    ]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["patient", "kind", "method", "amount", "appointment", "reference", "note"]
        return [
            "patient",
            "kind",
            "method",
            "amount",
            "appointment",
            "reference",
            "note",
            *self.readonly_fields,
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["patient", "kind", "method", "amount", "appointment", "reference", "note"] + list(
            self.readonly_fields
        )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("patient", "payer")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj: Payment, form, change) -> None:
        """Through the services (allocation, idempotency), never `obj.save()`."""
        if change:
            return  # a payment is never edited: refunds are payments of their own
        data = form.cleaned_data
        try:
            if data["kind"] == Payment.Kind.COPAY:
                made = payments.copay_take(
                    appointment=data["appointment"],
                    method=data["method"],
                    reference=data.get("reference", ""),
                    by=request.user,
                )
            else:
                made = payments.payment_take(
                    patient=data["patient"],
                    amount=data["amount"],
                    method=data["method"],
                    reference=data.get("reference", ""),
                    note=data.get("note", ""),
                    by=request.user,
                )
        except ApplicationError as error:
            raise PermissionDenied(error.detail) from error
        obj.pk = made.pk
        obj.__dict__.update({k: v for k, v in made.__dict__.items() if not k.startswith("_")})

    @admin.display(description="refund")
    def refund_link(self, obj: Payment) -> str:
        if obj.kind == Payment.Kind.REFUND or obj.patient_id is None:
            return "—"
        return format_html(
            '<a href="{}">Refund part or all of it</a>',
            reverse("admin:billing_payment_refund", args=[obj.pk]),
        )

    @admin.display(description="ledger")
    def ledger_entries(self, obj: Payment) -> str:
        rows = [
            (e.charge_id or "credit", e.get_kind_display(), e.amount)
            for e in obj.ledger.order_by("id")
        ]
        return format_html_join(", ", "{}: {} {}", rows) or "—"

    def get_urls(self):
        return [
            path(
                "<int:pk>/refund/",
                self.admin_site.admin_view(self.refund_view),
                name="billing_payment_refund",
            ),
            *super().get_urls(),
        ]

    def refund_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm("billing.change_payment"):
            raise PermissionDenied
        payment = get_object_or_404(Payment, pk=pk)
        form = RefundForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                refund = payments.payment_refund(
                    payment=payment,
                    amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    by=request.user,
                )
            except ApplicationError as error:
                form.add_error("amount", error.detail)
            else:
                audit.record(request, audit.CREATE, refund)
                self.message_user(request, f"Refunded {refund.amount}.", messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:billing_payment_change", args=[payment.pk])
                )
        audit.record(request, audit.READ, payment)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Refund {payment}",
            "opts": self.model._meta,
            "form": form,
            "payment": payment,
        }
        return TemplateResponse(request, "billing/admin/payment_refund.html", context)


# --- The ledger --------------------------------------------------------------------------------


class PatientFilter(admin.SimpleListFilter):
    """`?patient=<id>`: one patient's entries (linked from elsewhere; no list of names)."""

    title = "patient"
    parameter_name = "patient"

    def lookups(self, request, model_admin):
        value = self.value()
        if value and value.isdigit():
            patient = Patient.objects.filter(pk=value).first()
            if patient is not None:
                return [(value, str(patient))]
        return []

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(patient_id=int(value))
        return queryset


class MoveForm(forms.Form):
    """A biller's move of money on one charge: a transfer between payer and patient, or a
    write-off of either's share."""

    ACTIONS = [
        ("to_patient", "Transfer to the patient (from the payer)"),
        ("to_payer", "Transfer back to the payer (from the patient)"),
        ("write_off_payer", "Write off the payer's share"),
        ("write_off_patient", "Write off the patient's share"),
    ]
    action = forms.ChoiceField(choices=ACTIONS)
    amount = forms.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"))
    reason = forms.ChoiceField(
        choices=[("", "—"), *WriteOffReason.choices], required=False, help_text="Write-offs."
    )
    reason_code = forms.CharField(
        max_length=5, required=False, help_text="CARC for the payer's share (default: reason's)."
    )
    memo = forms.CharField(max_length=300, required=False)
    key = forms.CharField(widget=forms.HiddenInput, max_length=100)

    def clean(self):
        data = super().clean()
        if str(data.get("action", "")).startswith("write_off") and not data.get("reason"):
            self.add_error("reason", "Say why it is written off.")
        return data


@admin.register(LedgerEntry)
class LedgerEntryAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Read-only: the ledger is append-only and written by the services. A biller moves money
    on a charge (transfer, write-off) and applies a patient's credit through pages of their
    own, which call `billing.payments` / `billing.credits`."""

    list_display = [
        "posted_on",
        "patient",
        "party",
        "payer",
        "kind",
        "amount",
        "charge",
        "claim",
        "reason",
        "move_link",
    ]
    list_filter = [PatientFilter, "party", "kind", "group_code", "write_off_reason"]
    search_fields = ["patient__last_name", "patient__first_name", "memo", "reason_code"]
    date_hierarchy = "posted_on"
    list_select_related = ["patient", "payer"]

    @admin.display(description="why")
    def reason(self, obj: LedgerEntry) -> str:
        if obj.reason_code:
            return explain(obj.group_code, obj.reason_code, obj.remark_codes)
        return obj.memo

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="move")
    def move_link(self, obj: LedgerEntry) -> str:
        if obj.charge_id is None:
            return format_html(
                '<a href="{}">apply credit</a>',
                reverse("admin:billing_ledgerentry_credit", args=[obj.patient_id]),
            )
        return format_html(
            '<a href="{}">transfer / write off</a>',
            reverse("admin:billing_ledgerentry_move", args=[obj.charge_id]),
        )

    def get_urls(self):
        return [
            path(
                "charge/<int:charge_id>/move/",
                self.admin_site.admin_view(self.move_view),
                name="billing_ledgerentry_move",
            ),
            path(
                "patient/<int:patient_id>/apply-credit/",
                self.admin_site.admin_view(self.credit_view),
                name="billing_ledgerentry_credit",
            ),
            *super().get_urls(),
        ]

    def move_view(self, request: HttpRequest, charge_id: int) -> HttpResponse:
        """Transfer part of a charge's balance between its payer and the patient, or write
        part of either's share off: at most what the party owes (the form says so otherwise).
        The form's key makes a double submit one move."""
        if not request.user.has_perm("billing.add_ledgerentry"):
            raise PermissionDenied
        charge = get_object_or_404(Charge.objects.select_related("patient", "payer"), pk=charge_id)
        form = MoveForm(request.POST or None, initial={"key": f"admin-{uuid.uuid4()}"})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            action, key = data["action"], data["key"]
            try:
                if action in ("to_patient", "to_payer"):
                    made = list(
                        payments.responsibility_move(
                            charge=charge,
                            amount=data["amount"],
                            to=action.removeprefix("to_"),
                            memo=data["memo"],
                            idempotency_key=key,
                            by=request.user,
                        )
                    )
                else:
                    made = [
                        payments.adjustment_post(
                            charge=charge,
                            amount=data["amount"],
                            party=action.removeprefix("write_off_"),
                            write_off_reason=data["reason"],
                            reason_code=data["reason_code"],
                            memo=data["memo"],
                            idempotency_key=key,
                            by=request.user,
                        )
                    ]
            except ApplicationError as error:
                errors = error.extra.get("errors", {})
                field = next((f for f in errors if f in form.fields), None)
                form.add_error(field, error.detail)
            else:
                for entry in made:
                    audit.record(request, audit.CREATE, entry)
                self.message_user(request, f"Posted {len(made)} entries.", messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:billing_ledgerentry_changelist")
                    + f"?patient={charge.patient_id}"
                )
        balance = ledger.charge_balance(charge=charge)
        audit.record(request, audit.READ, charge)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Transfer or write off: {charge}",
            "opts": self.model._meta,
            "form": form,
            "charge": charge,
            "balance": balance,
        }
        return TemplateResponse(request, "billing/admin/ledger_move.html", context)

    def credit_view(self, request: HttpRequest, patient_id: int) -> HttpResponse:
        """Apply the patient's unapplied credit to their oldest open balances (POST)."""
        if not request.user.has_perm("billing.add_ledgerentry"):
            raise PermissionDenied
        patient = get_object_or_404(Patient, pk=patient_id)
        if request.method == "POST":
            applied = credits.credit_apply(patient=patient, by=request.user)
            for entry in applied:
                audit.record(request, audit.CREATE, entry)
            share = sum((e.amount for e in applied if e.charge_id), Decimal(0))
            self.message_user(request, f"Applied {-share} of credit.", messages.SUCCESS)
            return HttpResponseRedirect(
                reverse("admin:billing_ledgerentry_changelist") + f"?patient={patient.pk}"
            )
        audit.record(request, audit.READ, patient, fields=["balance"])
        context = {
            **self.admin_site.each_context(request),
            "title": f"Apply the credit of {patient}",
            "opts": self.model._meta,
            "patient": patient,
            "balance": ledger.patient_balance(patient=patient),
        }
        return TemplateResponse(request, "billing/admin/ledger_credit.html", context)

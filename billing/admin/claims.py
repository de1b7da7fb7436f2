"""billing's admin pages: claims (status, payer, totals, findings; lines read-only once
submitted; actions scrub, submit, download the 837P, replace, void, appeal), submissions (the
837P files sent) and the acknowledgement upload page (999, 277CA).

Every change goes through billing.claims' services, as the API's do; every claim shown is
audited (AuditedAdminMixin), and a downloaded 837P records a read of each claim it holds.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from audit import services as audit
from audit.mixins import AuditedAdminMixin
from clinic.errors import ApplicationError

from .. import claims as services
from ..models import Claim, ClaimLine, Submission
from ..x12.reading import X12Refused

SUBMIT = "billing.submit_claim"
CHANGE = "billing.change_claim"


def _x12_response(submission: Submission) -> HttpResponse:
    response = HttpResponse(submission.x12, content_type="application/edi-x12; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="837p-{submission.pk:09d}.x12"'
    return response


class LineForm(forms.ModelForm):
    class Meta:
        model = ClaimLine
        fields = ["units", "amount"]


class ClaimLineInline(admin.TabularInline):
    """A draft or ready claim's lines: units and amounts change, a line may go (its charge
    opens again); once submitted they are read-only (and frozen by the database)."""

    model = ClaimLine
    form = LineForm
    extra = 0
    fields = ["number", "charge", "service", "service_date", "units", "amount"]
    readonly_fields = ["number", "charge", "service", "service_date"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("charge__service_code")

    def _editable(self, request, obj) -> bool:
        return obj is not None and obj.status in services.EDITABLE and request.user.has_perm(CHANGE)

    def get_readonly_fields(self, request, obj=None):
        if self._editable(request, obj):
            return self.readonly_fields
        return self.fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # lines come from charges

    def has_change_permission(self, request, obj=None) -> bool:
        return self._editable(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._editable(request, obj)

    @admin.display(description="Service")
    def service(self, line: ClaimLine) -> str:
        charge = line.charge
        return f"{charge.service_code.code}{'-' + charge.modifiers if charge.modifiers else ''}"

    @admin.display(description="Date of service")
    def service_date(self, line: ClaimLine):
        return line.charge.service_date


class AppealForm(forms.Form):
    note = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text="Why the payer should pay: kept on the claim.",
    )


class AcknowledgementForm(forms.Form):
    file = forms.FileField(required=False, help_text="The 999 or 277CA file from the payer.")
    text = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 10, "cols": 100}),
        help_text="Or paste its text.",
    )

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload is not None:
            try:
                data["x12"] = upload.read(5_000_001).decode("utf-8")
            except UnicodeDecodeError:
                raise forms.ValidationError({"file": "Not a text file."}) from None
        else:
            data["x12"] = data.get("text") or ""
        if not data["x12"].strip():
            raise forms.ValidationError("Choose a file or paste its text.")
        if len(data["x12"]) > 5_000_000:
            raise forms.ValidationError("The file is larger than 5 MB.")
        return data


@admin.register(Claim)
class ClaimAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = [
        "control_number",
        "patient",
        "payer",
        "status",
        "frequency",
        "total_charge",
        "finding_count",
        "submission",
        "submitted_at",
    ]
    list_filter = ["status", "frequency", "payer"]
    search_fields = ["id", "patient__last_name", "patient__first_name", "payer_claim_number"]
    list_select_related = ["patient", "payer"]
    date_hierarchy = "created_at"
    inlines = [ClaimLineInline]
    actions = ["scrub", "submit", "download_837p", "replace", "void", "appeal"]
    fields = CLAIM_FIELDS = (
        "patient",
        "payer",
        "coverage",
        "episode",
        "rendering",
        "supervising",
        "supervising_npi",
        "status",
        "frequency",
        "replaces",
        "total_charge",
        "payer_claim_number",
        "submission",
        "submitted_at",
        "status_reason",
        "findings_list",
        "created_at",
        "updated_at",
    )
    readonly_fields = CLAIM_FIELDS

    def has_add_permission(self, request) -> bool:
        return False  # built from charges (the API's POST /claims/, the charges' pages)

    def save_model(self, request, obj, form, change) -> None:
        """The claim's own fields are read-only here: its lines go through `save_formset`,
        its status through the actions."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a claim is voided, never deleted

    @admin.display(description="Findings")
    def finding_count(self, claim: Claim) -> int:
        return len(claim.findings or [])

    @admin.display(description="Findings")
    def findings_list(self, claim: Claim) -> str:
        if not claim.findings:
            return "—"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li><code>{}</code> ({}): {}</li>",
                ((f["field"], f["location"], f["message"]) for f in claim.findings),
            ),
        )

    def changelist_view(self, request, extra_context=None):
        extra = dict(extra_context or {})
        if request.user.has_perm(CHANGE):
            extra["acknowledgement_url"] = reverse("admin:billing_claim_acknowledgement")
        return super().changelist_view(request, extra)

    def save_formset(self, request, form, formset, change):
        """Lines change through the service (total, status back to draft, charges reopened)."""
        if formset.model is not ClaimLine:
            return super().save_formset(request, form, formset, change)
        claim = form.instance
        formset.save(commit=False)
        gone = {line.pk for line in formset.deleted_objects}
        lines = [
            services.LineChange(id=f.instance.pk, units=f.instance.units, amount=f.instance.amount)
            for f in formset.forms
            if f.instance.pk is not None and f.instance.pk not in gone
        ]
        try:
            services.claim_update(claim=claim, lines=lines)
        except ApplicationError as error:
            self.message_user(request, f"Lines not saved: {error.detail}", messages.ERROR)
        return None

    # --- actions ---------------------------------------------------------------------------

    def _each(self, request, queryset: QuerySet, work, done: str) -> None:
        ok = 0
        for claim in queryset.order_by("id"):
            try:
                work(claim)
                ok += 1
            except ApplicationError as error:
                self.message_user(request, f"{claim}: {error.detail}", messages.ERROR)
        if ok:
            self.message_user(request, f"{ok} claim(s) {done}.", messages.SUCCESS)

    @admin.action(description="Scrub (check) the selected claims", permissions=["change"])
    def scrub(self, request, queryset):
        self._each(
            request, queryset, lambda c: services.claim_scrub(claim=c), "scrubbed: see Findings"
        )

    @admin.action(description="Submit the selected claims (one 837P)", permissions=["submit"])
    def submit(self, request, queryset):
        claims = list(queryset.order_by("id"))
        try:
            submission = services.claims_submit(claims=claims, by=request.user)
        except services.ClaimFindingsError as error:
            for finding in error.extra["findings"][:20]:
                self.message_user(
                    request,
                    f"Claim C{finding['claim']} {finding['field']}: {finding['message']}",
                    messages.ERROR,
                )
            self.message_user(request, "Nothing was submitted.", messages.ERROR)
            return None
        except ApplicationError as error:
            self.message_user(request, f"Nothing was submitted: {error.detail}", messages.ERROR)
            return None
        url = reverse("admin:billing_submission_x12", args=[submission.pk])
        self.message_user(
            request,
            format_html(
                '{} claim(s) sent in {}: <a href="{}">download the 837P</a>.',
                len(claims),
                submission,
                url,
            ),
            messages.SUCCESS,
        )
        return None

    @admin.action(description="Download the 837P of the selected claim", permissions=["view"])
    def download_837p(self, request, queryset):
        submissions = {c.submission_id for c in queryset} - {None}
        if len(submissions) != 1:
            self.message_user(
                request, "Select submitted claims of one submission.", messages.WARNING
            )
            return None
        submission = Submission.objects.get(pk=submissions.pop())
        for claim in submission.claims.all():
            audit.record(request, audit.READ, claim, label="837P download")
        return _x12_response(submission)

    @admin.action(description="Replace (frequency 7) the selected claims", permissions=["submit"])
    def replace(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda c: services.claim_correct(claim=c, frequency="7", by=request.user),
            "have a draft replacement: scrub and submit it",
        )

    @admin.action(description="Void (frequency 8) the selected claims", permissions=["submit"])
    def void(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda c: services.claim_correct(claim=c, frequency="8", by=request.user),
            "have a draft void: scrub and submit it",
        )

    @admin.action(description="Appeal the selected claim…", permissions=["change"])
    def appeal(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Appeal one claim at a time.", messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:billing_claim_appeal", args=[queryset.get().pk]))

    def has_submit_permission(self, request) -> bool:
        return request.user.has_perm(SUBMIT)

    # --- pages -------------------------------------------------------------------------------

    def get_urls(self):
        own = [
            path(
                "acknowledgements/",
                self.admin_site.admin_view(self.acknowledgement_view),
                name="billing_claim_acknowledgement",
            ),
            path(
                "<int:pk>/appeal/",
                self.admin_site.admin_view(self.appeal_view),
                name="billing_claim_appeal",
            ),
        ]
        return own + super().get_urls()

    def _page(self, request, form, **context) -> TemplateResponse:
        return TemplateResponse(
            request,
            "admin/billing/claim_form_page.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "form": form,
                "back_url": reverse("admin:billing_claim_changelist"),
                **context,
            },
        )

    def appeal_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm(CHANGE):
            raise PermissionDenied
        claim = self.get_queryset(request).filter(pk=pk).first()
        if claim is None:
            raise PermissionDenied
        form = AppealForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.claim_appeal(claim=claim, note=form.cleaned_data["note"], by=request.user)
            except ApplicationError as error:
                form.add_error(None, error.detail)
            else:
                audit.record(request, audit.UPDATE, claim, fields=["status", "status_reason"])
                self.message_user(request, f"{claim} is appealed.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:billing_claim_change", args=[pk]))
        return self._page(
            request, form, title=f"Appeal {claim}", submit_label="Appeal",
            intro=f"{claim} is {claim.get_status_display().lower()}. {claim.status_reason}",
        )  # fmt: skip

    def acknowledgement_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(CHANGE):
            raise PermissionDenied
        form = AcknowledgementForm(request.POST or None, request.FILES or None)
        findings = []
        if request.method == "POST" and form.is_valid():
            try:
                result = services.acknowledgement_import(
                    text=form.cleaned_data["x12"], by=request.user
                )
            except X12Refused as error:
                findings = [{"where": f.where, "message": f.message} for f in error.findings]
            except ApplicationError as error:
                form.add_error(None, error.detail)
            else:
                for claim in result.claims:
                    audit.record(request, audit.UPDATE, claim, fields=["status"])
                moved = ", ".join(f"{c} → {c.get_status_display()}" for c in result.claims)
                self.message_user(
                    request,
                    f"{result.kind}: {len(result.claims)} claim(s) moved"
                    + (f" ({moved})" if moved else "")
                    + (f"; not ours: {', '.join(result.unmatched)}" if result.unmatched else ""),
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:billing_claim_changelist"))
        return self._page(
            request, form, findings=findings, title="Upload a 999 or 277CA",
            submit_label="Read and apply",
            intro="A 999 accepts or rejects a submission's claims; a 277CA each claim, with the "
            "payer's claim number. A malformed file is refused whole, naming the segment.",
        )  # fmt: skip


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    """The 837P files sent: read-only, each downloadable."""

    list_display = [
        "__str__",
        "created_at",
        "claim_count",
        "total_charge",
        "acknowledgement",
        "file",
    ]
    list_filter = ["acknowledgement"]
    fields = SUBMISSION_FIELDS = (
        "claim_count", "total_charge", "acknowledgement", "created_at", "created_by", "file",
    )  # fmt: skip
    readonly_fields = SUBMISSION_FIELDS

    def get_queryset(self, request):
        return super().get_queryset(request).defer("x12")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="837P")
    def file(self, submission: Submission) -> str:
        url = reverse("admin:billing_submission_x12", args=[submission.pk])
        return format_html('<a href="{}">Download</a>', url)

    def get_urls(self):
        own = [
            path(
                "<int:pk>/x12/",
                self.admin_site.admin_view(self.x12_view),
                name="billing_submission_x12",
            )
        ]
        return own + super().get_urls()

    def x12_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm("billing.view_submission"):
            raise PermissionDenied
        submission = Submission.objects.filter(pk=pk).first()
        if submission is None:
            raise PermissionDenied
        for claim in submission.claims.all():
            audit.record(request, audit.READ, claim, label="837P download")
        return _x12_response(submission)

"""The clinic admin (`https://<clinic>.<host>/admin/`) for the practice directory.

Access follows the grants (practice/grants.py, through `user.has_perm`): the front desk edits
patients and coverage, the clinic admin edits practitioners, payers, service codes,
locations, specialties and the clinic's settings; practitioners and billers view what their
work needs. Admin forms validate with the model's `full_clean()`, the same rules as the
services. Nothing with history is deleted here: the "deactivate" actions go through the
services instead.

A patient's data rights (practice/rights.py) are on their change page, under the grants:
"Download data" (JSON, PDF) for those who may export, "Erase" for the clinic admin, which
asks for a reason and a confirmation and, when the patient asked, carries out or declines
their request. Erasure requests have their own read-only list.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import update_session_auth_hash
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from audit import services as audit
from audit.admin import patient_events_url
from audit.mixins import AuditedAdminMixin
from clinic.errors import ApplicationError

from . import rights, selectors, services
from .models import (
    ClinicSettings,
    Condition,
    ConsentText,
    Coverage,
    ErasureRequest,
    Guardian,
    Location,
    Patient,
    PatientConsent,
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


@admin.register(Condition)
class ConditionAdmin(admin.ModelAdmin):
    """What the search understands: a condition, the words patients use for it and who treats
    it (specialties by slug, practitioners by name). Shipped ones can be changed; none is
    deleted (untick "active" to stop matching it)."""

    list_display = ["name", "synonym_list", "specialty_list", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    ordering = ["name"]
    autocomplete_fields = ["practitioners"]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="Synonyms")
    def synonym_list(self, obj: Condition) -> str:
        return ", ".join(obj.synonyms)

    @admin.display(description="Specialties")
    def specialty_list(self, obj: Condition) -> str:
        return ", ".join(obj.specialty_slugs)


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


class LabelledTabularInline(admin.TabularInline):
    """A tabular inline whose inputs carry their column's name (`aria-label`): the table's
    headers are not labels, so a screen reader announced bare inputs (axe: critical)."""

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        for name, field in formset.form.base_fields.items():
            label = str(field.label or name).capitalize()
            field.widget.attrs.setdefault("aria-label", label)
            inner = getattr(field.widget, "widget", None)  # a related-object wrapper's select
            if inner is not None:
                inner.attrs.setdefault("aria-label", label)
        return formset


class PrivateFileInput(forms.ClearableFileInput):
    """An upload box that never links the file it holds: card photos have no public URL
    (the `cards` column links the staff-only download)."""

    def is_initial(self, value) -> bool:
        return False


class CoverageForm(forms.ModelForm):
    """Card photos are checked as images (`services.card_image_check`) before they are kept."""

    class Meta:
        model = Coverage
        fields = [
            "patient",
            *services.COVERAGE_FIELDS,
            "card_front",
            "card_back",
        ]
        widgets = {
            "card_front": PrivateFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
            "card_back": PrivateFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "subscriber_relationship" in self.fields:  # the patient's own policy, unless said
            self.fields["subscriber_relationship"].required = False

    def clean_subscriber_relationship(self) -> str:
        return self.cleaned_data.get("subscriber_relationship") or Coverage.Relationship.SELF

    def _card(self, name: str):
        upload = self.cleaned_data.get(name)
        if upload and hasattr(upload, "content_type"):  # a new upload, not the stored file
            try:
                services.card_image_check(upload, name)
            except ValidationError as error:
                raise ValidationError(error.message_dict[name]) from None
        return upload

    def clean_card_front(self):
        return self._card("card_front")

    def clean_card_back(self):
        return self._card("card_back")


def card_links(coverage: Coverage) -> str:
    """Links to the staff-only download of the card photos on file."""
    links = [
        format_html(
            '<a href="{}">{}</a>',
            reverse("admin:practice_coverage_card", args=[coverage.pk, side]),
            f"Card ({side})",
        )
        for side in ("front", "back")
        if coverage.pk and getattr(coverage, f"card_{side}")
    ]
    return format_html(" · ".join(["{}"] * len(links)), *links) if links else "—"


class CoverageInline(LabelledTabularInline):
    """Insurance as the sign-up takes it: payer, member id, group, the subscriber and the
    card photos (uploaded to private storage; downloaded through the `cards` links). Laid out
    stacked (a row of twelve columns would not fit), its inputs still labelled."""

    template = "admin/edit_inline/stacked.html"

    model = Coverage
    form = CoverageForm
    extra = 0
    can_delete = False
    autocomplete_fields = ["payer"]
    fields = [
        ("payer", "member_id", "group_number"),
        ("subscriber_relationship", "subscriber_name", "subscriber_date_of_birth"),
        ("priority", "effective_from", "effective_to", "copay_amount"),
        ("card_front", "card_back", "cards"),
        "is_active",
    ]
    ordering = ["priority", "-effective_from"]
    readonly_fields = ["is_active", "cards"]

    @admin.display(description="On file")
    def cards(self, obj: Coverage) -> str:
        return card_links(obj)


class GuardianInline(admin.TabularInline):
    """A guardian or responsible party (required at sign-up for a patient under 18)."""

    model = Guardian
    extra = 0
    fields = ["name", "relationship", "phone", "email", "is_responsible_party"]


class PatientConsentInline(admin.TabularInline):
    """The consents the patient signed: which version, the typed name, when. Never edited."""

    model = PatientConsent
    extra = 0
    can_delete = False
    fields = ("consent_text", "signed_name", "signed_at", "signed_by")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Patient)
class PatientAdmin(AuditedAdminMixin, SoftDeleteAdmin):
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

    def get_inlines(self, request, obj=None):
        # Guardians and signed consents on the patient's page; the add page posts coverage only.
        inlines = super().get_inlines(request, obj)
        return [*inlines, GuardianInline, PatientConsentInline] if obj is not None else inlines

    def change_view(self, request: HttpRequest, object_id: str, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        if request.user.has_perm("audit.view_auditevent") and str(object_id).isdigit():
            extra["audit_trail_url"] = patient_events_url(int(object_id))
        return super().change_view(request, object_id, form_url, extra)

    # Data rights -------------------------------------------------------------------------

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None and _may_export_or_erase(request):
            fieldsets.append(("Data rights", {"fields": ("data_rights",)}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "data_rights"] if obj is not None else readonly

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:  # what the `data_rights` links offer: the user's grants
            obj.may_export = request.user.has_perm("practice.export_patient")
            obj.may_erase = request.user.has_perm("practice.erase_patient")
        return obj

    @admin.display(description="Patient's data")
    def data_rights(self, obj: Patient) -> str:
        if rights.patient_is_erased(obj):
            return "Erased: only what the law keeps is left."
        links = []
        if getattr(obj, "may_export", False):
            for fmt in rights.EXPORT_FORMATS:
                url = reverse("admin:practice_patient_export", args=[obj.pk, fmt])
                links.append(format_html('<a href="{}">Download data ({})</a>', url, fmt.upper()))
        if getattr(obj, "may_erase", False):
            url = reverse("admin:practice_patient_erase", args=[obj.pk])
            pending = obj.erasures.filter(status=ErasureRequest.Status.PENDING).exists()
            label = "Erasure requested: review" if pending else "Erase (anonymise)…"
            links.append(format_html('<a class="deletelink" href="{}">{}</a>', url, label))
        return format_html(" · ".join(["{}"] * len(links)), *links) if links else "—"

    def get_urls(self):
        own = [
            path(
                "<int:pk>/export/<str:fmt>/",
                self.admin_site.admin_view(self.export_view),
                name="practice_patient_export",
            ),
            path(
                "<int:pk>/erase/",
                self.admin_site.admin_view(self.erase_view),
                name="practice_patient_erase",
            ),
        ]
        return own + super().get_urls()

    def _patient_for(self, request: HttpRequest, pk: int, permission: str) -> Patient:
        """The patient, if the user holds `permission` and the row is in their scope."""
        if not request.user.has_perm(permission):
            raise PermissionDenied
        patient = self.get_queryset(request).filter(pk=pk).first()
        if patient is None:
            raise PermissionDenied
        return patient

    def export_view(self, request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
        if fmt not in rights.EXPORT_FORMATS:
            raise PermissionDenied
        patient = self._patient_for(request, pk, "practice.export_patient")
        document = rights.patient_export(patient=patient, staff=True, request=request)
        content, media_type, filename = rights.patient_export_file(document, fmt)
        response = HttpResponse(content, content_type=media_type)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    def erase_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        patient = self._patient_for(request, pk, "practice.erase_patient")
        pending = patient.erasures.filter(status=ErasureRequest.Status.PENDING).first()
        form = ErasureForm(request.POST or None)
        change_url = reverse("admin:practice_patient_change", args=[patient.pk])
        if request.method == "POST" and form.is_valid():
            reason = form.cleaned_data["reason"]
            try:
                if "decline" in request.POST and pending is not None:
                    rights.erasure_decline(request=pending, by=request.user, reason=reason)
                    self.message_user(request, "The request is declined.", messages.SUCCESS)
                elif form.cleaned_data["confirm"]:
                    rights.patient_erase(
                        patient=patient, by=request.user, reason=reason, request=pending
                    )
                    self.message_user(request, "The patient is erased.", messages.SUCCESS)
                else:
                    form.add_error("confirm", "Tick the box to erase: it cannot be undone.")
            except ValidationError as error:
                form.add_error(None, error)
            except ApplicationError as error:
                form.add_error(None, error.detail)
            if not form.errors:
                return HttpResponseRedirect(change_url)
        if request.method == "GET":
            audit.record(request, audit.READ, patient, label="erase page")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Erase {patient}",
            "opts": self.model._meta,
            "patient": patient,
            "pending": pending,
            "erased": rights.patient_is_erased(patient),
            "form": form,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/practice/patient_erase.html", context)


def _may_export_or_erase(request: HttpRequest) -> bool:
    user = request.user
    return user.has_perm("practice.export_patient") or user.has_perm("practice.erase_patient")


class ErasureForm(forms.Form):
    reason = forms.CharField(
        max_length=300,
        help_text="Why: the patient's request, a legal ground. Kept with the erasure's record.",
        widget=forms.TextInput(attrs={"size": 80}),
    )
    confirm = forms.BooleanField(
        required=False,
        label="I understand: the patient's name, contact details and account are removed for "
        "good; visits, units and the audit trail stay.",
    )


@admin.register(ErasureRequest)
class ErasureRequestAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """What patients asked, and every erasure: read-only (they are carried out or declined on
    the patient's erase page)."""

    list_display = ["patient_link", "status", "requested_at", "decided_at", "decided_by", "reason"]
    list_filter = ["status"]
    list_select_related = ["patient", "decided_by"]
    ordering = ["-requested_at", "-id"]
    fields = readonly_fields = (
        "patient",
        "status",
        "requested_at",
        "requested_by",
        "message",
        "decided_at",
        "decided_by",
        "reason",
        "summary",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="Patient", ordering="patient__last_name")
    def patient_link(self, obj: ErasureRequest) -> str:
        # The patient's page offers the erasure to those who may carry it out.
        url = reverse("admin:practice_patient_change", args=[obj.patient_id])
        return format_html('<a href="{}">{}</a>', url, obj.patient)


@admin.register(Payer)
class PayerAdmin(SoftDeleteAdmin):
    entity = "payer"
    list_display = ["name", "edi_payer_id", "claim_filing_code", "is_active"]
    list_filter = ["is_active", "claim_filing_code"]
    search_fields = ["name", "edi_payer_id"]
    ordering = ["name"]
    readonly_fields = ["is_active"]


@admin.register(Coverage)
class CoverageAdmin(AuditedAdminMixin, SoftDeleteAdmin):
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
    readonly_fields = ["is_active", "cards"]
    form = CoverageForm

    @admin.display(description="Card photos on file")
    def cards(self, obj: Coverage) -> str:
        return card_links(obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Coverage]:
        return selectors.rows_in_scope(
            super().get_queryset(request),
            user=request.user,
            permission="practice.view_coverage",
            patient="patient",
        )

    def get_urls(self):
        own = [
            path(
                "<int:pk>/card/<str:side>/",
                self.admin_site.admin_view(self.card_view),
                name="practice_coverage_card",
            )
        ]
        return own + super().get_urls()

    def card_view(self, request: HttpRequest, pk: int, side: str) -> FileResponse:
        """A card photo, to staff who may view the coverage (its row in their scope), as an
        attachment never cached; the read is in the audit trail."""
        if side not in ("front", "back") or not request.user.has_perm("practice.view_coverage"):
            raise PermissionDenied
        coverage = self.get_queryset(request).filter(pk=pk).first()
        if coverage is None:
            raise PermissionDenied
        photo = getattr(coverage, f"card_{side}")
        if not photo:
            raise Http404("No photo of this side of the card.")
        audit.record(request, audit.READ, coverage, fields=[f"card_{side}"], label=f"card {side}")
        response = FileResponse(
            photo.open("rb"),
            as_attachment=True,
            filename=f"coverage-{pk}-card-{side}{photo.name[photo.name.rfind('.') :]}",
        )
        response["Cache-Control"] = "private, no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response


@admin.register(ConsentText)
class ConsentTextAdmin(admin.ModelAdmin):
    """The consents' wording, by version: a changed text is added as a new version (the
    rows patients signed keep pointing at theirs), so the clinic admin adds, never edits."""

    list_display = ["title", "kind", "version", "is_active", "created_at"]
    list_filter = ["kind", "is_active"]
    ordering = ["kind", "-version"]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return ["kind", "version", "title", "body", "created_at"] if obj else ["created_at"]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


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

    def save_model(self, request: HttpRequest, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if "require_staff_two_factor" in form.changed_data and obj.require_staff_two_factor:
            services.staff_two_factor_enforce()
            # This admin's own session goes on, to enrol an app on the next page.
            user = request.user
            assert user.is_authenticated  # the admin's own check
            user.refresh_from_db(fields=["token_version"])
            update_session_auth_hash(request, user)

    def changelist_view(self, request: HttpRequest, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        settings = selectors.clinic_settings_get()
        return HttpResponseRedirect(
            reverse("admin:practice_clinicsettings_change", args=[settings.pk])
        )

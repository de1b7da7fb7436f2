"""The front desk's waitlist pages: the queue (waiting entries earliest first, the order
offers are made in; add an entry for a patient), and the offers in flight (held slots with
their expiry, then the decided ones)."""

from typing import ClassVar

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.mixins import AuditedAdminMixin
from practice.selectors import rows_in_scope
from scheduling.admin import OutOfScopeIsForbidden

from . import services
from .errors import EntryRefusedError
from .models import WaitlistEntry, WaitlistOffer

_WISHES = (
    "appointment_type", "earliest_date", "latest_date", "practitioner", "specialty",
    "preferred_start_time", "preferred_end_time",
)  # fmt: skip


class WaitlistEntryForm(forms.ModelForm):
    class Meta:
        model = WaitlistEntry
        fields = (
            "patient", "practitioner", "specialty", "appointment_type", "earliest_date",
            "latest_date", "preferred_weekdays", "preferred_start_time", "preferred_end_time",
            "notes",
        )  # fmt: skip

    def clean(self):
        data = super().clean()
        if self.errors or self.instance.pk is not None:
            return data
        try:
            services.entry_check(**{field: data.get(field) for field in _WISHES})
        except EntryRefusedError as error:
            self.add_error(error.field if error.field in self.fields else None, error.detail)
        return data


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(AuditedAdminMixin, OutOfScopeIsForbidden, admin.ModelAdmin):
    """The queue: waiting entries earliest first; `status` filters the rest."""

    form = WaitlistEntryForm
    list_display = (
        "created_at", "patient", "practitioner", "specialty", "appointment_type",
        "earliest_date", "latest_date", "status", "authorization_note",
    )  # fmt: skip
    list_filter = ("status", "practitioner", "appointment_type")
    search_fields = ("patient__last_name", "patient__first_name", "=patient__id")
    list_select_related = ("patient", "practitioner", "specialty", "appointment_type")
    autocomplete_fields = ("patient",)
    ordering = ("created_at", "id")
    readonly_fields: ClassVar = ["status", "authorization_note", "appointment", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return rows_in_scope(
            super().get_queryset(request),
            user=request.user,
            permission="waitlist.view_waitlistentry",
            practitioner="practitioner",
            patient="patient",
        )

    def save_model(self, request, obj, form, change) -> None:
        if change:
            services.entry_update(
                entry=obj,
                **{
                    field: form.cleaned_data[field]
                    for field in form.changed_data
                    if field in services.UPDATABLE
                },
            )
            return
        made = services.entry_create(
            patient=form.cleaned_data["patient"],
            preferred_weekdays=form.cleaned_data.get("preferred_weekdays") or [],
            notes=form.cleaned_data.get("notes", ""),
            created_by=request.user,
            **{field: form.cleaned_data.get(field) for field in _WISHES},
        )
        obj.pk = made.pk

    def delete_model(self, request, obj) -> None:
        services.entry_cancel(entry=obj)

    def delete_queryset(self, request, queryset) -> None:
        for entry in queryset:
            services.entry_cancel(entry=entry)


@admin.register(WaitlistOffer)
class WaitlistOfferAdmin(AuditedAdminMixin, OutOfScopeIsForbidden, admin.ModelAdmin):
    """Offers in flight: held slots (filter Held) with the time they pass on."""

    list_display = (
        "created_at", "patient", "practitioner", "start", "status", "expires_at", "appointment",
    )  # fmt: skip
    list_filter = ("status", "practitioner")
    list_select_related = ("patient", "practitioner", "appointment")
    readonly_fields: ClassVar = [f.name for f in WaitlistOffer._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return rows_in_scope(
            super().get_queryset(request),
            user=request.user,
            permission="waitlist.view_waitlistoffer",
            practitioner="practitioner",
            patient="patient",
        )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

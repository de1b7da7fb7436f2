"""The clinic staff's pages: the notification log (per visit and per patient, by the list's
filters), reminder rules, opt-outs, and message templates with a preview."""

from typing import ClassVar

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from audit.mixins import AuditedAdminMixin
from practice.selectors import rows_in_scope
from scheduling.admin import OutOfScopeIsForbidden

from .models import ChannelOptOut, MessageTemplate, Notification, ReminderRule
from .rendering import default_template, render


@admin.register(Notification)
class NotificationAdmin(AuditedAdminMixin, OutOfScopeIsForbidden, admin.ModelAdmin):
    """The log: filter by visit (`?appointment__id__exact=`) or patient (`?patient__id__exact=`);
    a practitioner sees the messages of their own column's visits."""

    list_display = (
        "due_at", "kind", "channel", "status", "attempts", "appointment", "about", "patient",
    )  # fmt: skip
    list_filter = ("status", "kind", "channel", "appointment__id", "patient__id")
    search_fields = ("=appointment__id", "=patient__id", "patient__last_name", "=about")
    list_select_related = ("appointment", "patient")
    raw_id_fields = ("appointment", "patient", "rule")
    date_hierarchy = "due_at"
    readonly_fields: ClassVar = [f.name for f in Notification._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return rows_in_scope(
            super().get_queryset(request),
            user=request.user,
            permission="notifications.view_notification",
            practitioner="appointment__practitioner",
            patient="patient",
        )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ReminderRule)
class ReminderRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "appointment_type", "offset_minutes", "channel", "is_active")
    list_filter = ("channel", "is_active")


@admin.register(ChannelOptOut)
class ChannelOptOutAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("patient", "channel", "created_at")
    raw_id_fields = ("patient",)


_SAMPLE = {
    "patient": "Robin",
    "clinic": "Your clinic",
    "visit_type": "Initial assessment",
    "practitioner": "Dr. Alpha",
    "date": "Tuesday, December 8, 2026",
    "time": "10:45 AM",
    "zone": "New York time (EST)",
    "place": "at Main Street",
    "phone": "+1 212 555 0100",
    "confirm_url": "https://example.clinic/n/…/",
    "cancel_url": "https://example.clinic/n/…/",
    "reschedule_url": "https://example.clinic/n/…/",
    "until": "Dec 8, 2026, 10:15 AM",
    "offer_url": "https://example.clinic/w/…/",
}


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ("kind", "channel", "subject", "updated_at")
    readonly_fields = ("preview",)
    fields = ("kind", "channel", "subject", "body", "preview")

    def get_changeform_initial_data(self, request) -> dict:
        kind, channel = request.GET.get("kind", "reminder"), request.GET.get("channel", "email")
        try:
            subject, body = default_template(kind, channel)
        except (KeyError, ValueError):
            return {}
        return {"kind": kind, "channel": channel, "subject": subject, "body": body}

    @admin.display(description="Preview (sample visit)")
    def preview(self, obj: MessageTemplate | None) -> str:
        if obj is None or not obj.pk:
            return "Save to see a preview."
        try:
            shown = render(
                kind=obj.kind,
                channel=obj.channel,
                context=_SAMPLE,
                template=(obj.subject, obj.body),
            )
        except Exception as error:  # a template error is the admin's to fix: say which
            return format_html("<strong>Template error:</strong> {}", error)
        return format_html("<p><strong>{}</strong></p><pre>{}</pre>", shown.subject, shown.body)

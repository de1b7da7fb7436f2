"""The clinic admin for the schedule: appointments (bulk actions through the services), hours,
time off, types, series, calendar feeds and smart-booking jobs. The schedule board lives in
backoffice/board.py (/admin/scheduling/board/).

Access follows the grants (scheduling/grants.py, through `user.has_perm`), including the
appointment's own permissions (book, checkin, complete, noshow, cancel); a practitioner's
grants reach only their own schedule (`practice.selectors.rows_in_scope`).
Nothing is booked, changed in status or deleted through a form: the services do it.
"""

import json
from datetime import datetime, time, timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from audit.mixins import AuditedAdminMixin
from authorizations.admin import utilisation_bar
from clinic.errors import ApplicationError
from clinic.inputs import schedule_date_error
from practice import formats
from practice.selectors import rows_in_scope

from . import services, states
from .models import (
    Appointment,
    AppointmentEvent,
    AppointmentSeries,
    AppointmentType,
    CalendarFeed,
    SmartBookingJob,
    TimeOff,
    WorkingHours,
)


def status_badge(value: str, label: str) -> str:
    return format_html('<span class="bo-status bo-status-{}">{}</span>', value, label)


class OutOfScopeIsForbidden(admin.ModelAdmin):
    """A row that exists but lies outside what this user may see is a 403, not Django's
    "does not exist" redirect (which also hides that access was refused)."""

    def get_object(self, request: HttpRequest, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            try:
                exists = self.model._default_manager.filter(pk=object_id).exists()
            except (ValueError, ValidationError):
                exists = False
            if exists:
                raise PermissionDenied
        return obj


class PractitionerScopedAdmin(OutOfScopeIsForbidden, admin.ModelAdmin):
    """Rows and practitioners to pick within the scope of the user's grant on the model: a
    practitioner's own only."""

    practitioner_path = "practitioner"

    def _view_permission(self) -> str:
        return f"{self.opts.app_label}.view_{self.opts.model_name}"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return rows_in_scope(
            super().get_queryset(request),
            user=request.user,
            permission=self._view_permission(),
            practitioner=self.practitioner_path,
        )

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "practitioner":
            from practice.models import Practitioner

            kwargs["queryset"] = rows_in_scope(
                Practitioner.objects.filter(is_active=True),
                user=request.user,
                permission=self._view_permission(),
                practitioner="",
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(AppointmentType)
class AppointmentTypeAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "duration_minutes",
        "buffers",
        "mode",
        "service_code",
        "min_notice_minutes",
        "is_active",
    ]
    list_filter = ["mode", "is_active"]
    search_fields = ["name"]
    filter_horizontal = ["practitioners"]
    list_select_related = ["service_code"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # appointments point at their type: retire it (is_active) instead

    @admin.display(description="Buffers (min)")
    def buffers(self, obj: AppointmentType) -> str:
        return f"{obj.buffer_before_minutes} / {obj.buffer_after_minutes}"


@admin.register(WorkingHours)
class WorkingHoursAdmin(PractitionerScopedAdmin):
    list_display = ["practitioner", "weekday", "start_time", "end_time", "location", "effective"]
    list_filter = ["weekday", "location", ("practitioner", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["practitioner__display_name"]
    list_select_related = ["practitioner", "location"]
    ordering = ["practitioner__display_name", "weekday", "start_time"]

    @admin.display(description="Effective")
    def effective(self, obj: WorkingHours) -> str:
        if not (obj.effective_from or obj.effective_to):
            return "always"
        return f"{obj.effective_from or '…'} – {obj.effective_to or '…'}"


class TimeOffForm(forms.ModelForm):
    """Time off within the years a schedule covers: a stored year 1 broke the list (a 500)."""

    class Meta:
        model = TimeOff
        fields = ["practitioner", "start", "end", "reason"]

    def clean(self):
        data = super().clean()
        for field in ("start", "end"):
            if data.get(field) and (message := schedule_date_error(data[field])):
                self.add_error(field, message)
        return data


@admin.register(TimeOff)
class TimeOffAdmin(PractitionerScopedAdmin):
    form = TimeOffForm
    list_display = ["practitioner", "start", "end", "reason"]
    list_filter = [("practitioner", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["practitioner__display_name", "reason"]
    date_hierarchy = "start"
    list_select_related = ["practitioner"]


class EventInline(admin.TabularInline):
    model = AppointmentEvent
    extra = 0
    can_delete = False
    readonly_fields = ["kind", "at", "by", "data"]
    verbose_name_plural = "history"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class WhenFilter(admin.SimpleListFilter):
    """Today and this week (Monday to Sunday) in the clinic's zone, the admin's current one;
    upcoming and past."""

    title = "when"
    parameter_name = "when"

    def lookups(self, request, model_admin):
        return [
            ("today", "Today"),
            ("week", "This week"),
            ("upcoming", "Upcoming"),
            ("past", "Past"),
        ]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        today = timezone.localdate(now)
        zone = timezone.get_current_timezone()

        def midnight(day):
            return datetime.combine(day, time.min, tzinfo=zone)

        if self.value() == "today":
            return queryset.filter(
                start__gte=midnight(today), start__lt=midnight(today + timedelta(days=1))
            )
        if self.value() == "week":
            monday = today - timedelta(days=today.weekday())
            return queryset.filter(
                start__gte=midnight(monday), start__lt=midnight(monday + timedelta(days=7))
            )
        if self.value() == "upcoming":
            return queryset.filter(end__gte=now)
        if self.value() == "past":
            return queryset.filter(end__lt=now)
        return queryset


def soonest_first() -> list:
    """Visits still to come first, the soonest at the top; then past ones, the latest first
    (a front desk looks for today and tomorrow, not the farthest future)."""
    now = timezone.now()
    upcoming = Q(end__gte=now)
    return [
        Case(When(upcoming, then=Value(0)), default=Value(1)).asc(),
        Case(When(upcoming, then=F("start"))).asc(nulls_last=True),
        F("start").desc(),
        F("id").desc(),
    ]


# The bulk actions: (their row of states.TRANSITIONS, which names the permission and the
# statuses and moments the service accepts; the service; past participle for messages).
BULK_SERVICES = {
    "checkin": (states.CHECK_IN, services.appointment_check_in, "checked in"),
    "complete": (states.COMPLETE, services.appointment_complete, "completed"),
    "noshow": (states.NO_SHOW, services.appointment_no_show, "marked as no-show"),
    "cancel": (states.CANCEL, services.appointment_cancel, "cancelled"),
    # Not a row of its own: undoing a no-show needs the no-show's permission.
    "undo_noshow": (states.NO_SHOW, services.appointment_no_show_undo, "booked again"),
}


@admin.register(Appointment)
class AppointmentAdmin(AuditedAdminMixin, PractitionerScopedAdmin):
    list_display = [
        "when",
        "patient",
        "practitioner",
        "appointment_type",
        "status_label",
        "source",
        "units",
    ]
    list_display_links = ["when", "patient"]
    list_filter = [
        WhenFilter,
        "status",
        ("practitioner", admin.RelatedOnlyFieldListFilter),
        ("appointment_type", admin.RelatedOnlyFieldListFilter),
        "source",
        "is_telehealth",
    ]
    search_fields = ["patient__first_name", "patient__last_name", "practitioner__display_name"]
    date_hierarchy = "start"
    list_select_related = [
        "practitioner",
        "patient",
        "appointment_type",
        "unit_reservation__line__authorization",
    ]
    list_per_page = 50
    inlines = [EventInline]
    actions = [
        "check_in_selected",
        "complete_selected",
        "no_show_selected",
        "undo_no_show_selected",
        "cancel_selected",
    ]
    fieldsets = (
        (
            "Visit",
            {
                "fields": (
                    "patient",
                    "practitioner",
                    "appointment_type",
                    "start",
                    "end",
                    "status_label",
                    "location",
                    "is_telehealth",
                    "telehealth_url",
                    "notes",
                )
            },
        ),
        ("Authorization", {"fields": ("reservation", "authorization_warning")}),
        (
            "History",
            {
                "classes": ("collapse",),
                "fields": (
                    "source",
                    "booked_by",
                    "created_at",
                    "checked_in_at",
                    "completed_at",
                    "cancelled_at",
                    "cancelled_by",
                    "cancellation_reason",
                    "is_late_cancel",
                    "overbooked",
                    "overbooked_by",
                    "reschedule_count",
                    "series",
                    "smart_job_id",
                ),
            },
        ),
    )

    def get_ordering(self, request):
        return soonest_first()

    def get_readonly_fields(self, request, obj=None):
        # Only the staff notes are edited here; everything else changes through a service.
        editable = {"notes"}
        fields = [f.name for f in Appointment._meta.fields if f.name not in editable]
        return [*fields, "status_label", "reservation"]

    def save_model(self, request, obj, form, change):
        # Write only the notes: a whole-row save could undo a status change made meanwhile.
        obj.save(update_fields=["notes", "updated_at"])

    def has_add_permission(self, request) -> bool:
        return False  # bookings go through the booking service (the board, the API)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # cancel instead

    def _may(self, request, action: str) -> bool:
        transition = states.TRANSITIONS[BULK_SERVICES[action][0]]
        return request.user.has_perm(transition.permission)

    def has_checkin_permission(self, request) -> bool:
        return self._may(request, "checkin")

    def has_complete_permission(self, request) -> bool:
        return self._may(request, "complete")

    def has_noshow_permission(self, request) -> bool:
        return self._may(request, "noshow")

    def has_cancel_permission(self, request) -> bool:
        return self._may(request, "cancel")

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "board_url": reverse("scheduling_board")}
        return super().changelist_view(request, extra_context)

    @admin.display(description="When", ordering="start")
    def when(self, obj: Appointment) -> str:
        zone = formats.visit_zone(obj) if obj.location_id else None
        start = formats.datetime_format(obj.start, style="day", zone=zone)
        return f"{start}–{formats.time_format(obj.end, zone=zone)}"

    @admin.display(description="Status", ordering="status")
    def status_label(self, obj: Appointment) -> str:
        late = " (late)" if obj.is_late_cancel else ""
        return status_badge(obj.status, obj.get_status_display() + late)

    @admin.display(description="Units")
    def units(self, obj: Appointment) -> str:
        reservation = obj.unit_reservation
        if reservation is None:
            return "⚠" if obj.authorization_warning else "—"
        return f"{reservation.units} {reservation.state}"

    @admin.display(description="Unit reservation")
    def reservation(self, obj: Appointment) -> str:
        reservation = obj.unit_reservation
        if reservation is None:
            return obj.authorization_warning or "None: this visit draws on no authorization."
        line = reservation.line
        authorization = line.authorization
        may_view: set[str] = getattr(obj, "viewer_may", set())
        label = format_html("authorization <strong>{}</strong>", authorization.number)
        if "authorization" in may_view:
            url = reverse("admin:authorizations_authorization_change", args=[authorization.pk])
            label = format_html('<a href="{}">{}</a>', url, label)
        ledger = ""
        if "unitreservation" in may_view:
            url = reverse("admin:authorizations_unitreservation_change", args=[reservation.pk])
            ledger = format_html(' · <a href="{}">ledger entry #{}</a>', url, reservation.pk)
        return format_html(
            "{} unit(s) <strong>{}</strong> on {} for {}{}<div>{}</div>",
            reservation.units,
            reservation.get_state_display().lower(),
            label,
            reservation.service_date,
            ledger,
            utilisation_bar(line),
        )

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            # Link the reservation only to the pages this user may open.
            obj.viewer_may = {
                model
                for model in ("authorization", "unitreservation")
                if request.user.has_perm(f"authorizations.view_{model}")
            }
        return obj

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related(
                "practitioner",
                "patient",
                "appointment_type",
                "location",
                "unit_reservation__line__authorization",
            )
        )

    # --- bulk actions: each appointment through its service, refusals reported ---------------

    def _bulk(self, request, queryset: QuerySet[Appointment], action: str, **kwargs) -> None:
        _, service, done_label = BULK_SERVICES[action]
        done, refused = 0, []
        for appointment in queryset.select_related("patient"):
            try:
                service(appointment=appointment, by=request.user, **kwargs)
                done += 1
            except ApplicationError as error:
                when = formats.datetime_format(appointment.start, style="day")
                refused.append(f"{appointment.patient} {when}: {error.detail}")
        if done:
            self.message_user(request, f"{done} appointment(s) {done_label}.", messages.SUCCESS)
        if refused:
            self.message_user(
                request,
                f"{len(refused)} refused — " + " · ".join(refused[:10]),
                messages.WARNING,
            )

    @admin.action(description="Check in selected appointments", permissions=["checkin"])
    def check_in_selected(self, request, queryset):
        self._bulk(request, queryset, "checkin")

    @admin.action(description="Complete selected appointments", permissions=["complete"])
    def complete_selected(self, request, queryset):
        self._bulk(request, queryset, "complete")

    @admin.action(description="Mark selected appointments as no-show", permissions=["noshow"])
    def no_show_selected(self, request, queryset):
        self._bulk(request, queryset, "noshow")

    @admin.action(
        description="Undo the no-show of selected appointments (fee reversed)",
        permissions=["noshow"],
    )
    def undo_no_show_selected(self, request, queryset):
        self._bulk(request, queryset, "undo_noshow")

    @admin.action(description="Cancel selected appointments…", permissions=["cancel"])
    def cancel_selected(self, request, queryset):
        """Asks for the reason first (an intermediate page, like Django's delete)."""
        reason = request.POST.get("reason", "").strip()
        if request.POST.get("confirm") and reason:
            self._bulk(request, queryset, "cancel", reason=reason)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Cancel appointments",
            "opts": self.model._meta,
            "queryset": queryset.select_related("patient", "practitioner"),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "reason": reason,
            "missing_reason": bool(request.POST.get("confirm")) and not reason,
        }
        return TemplateResponse(
            request, "admin/scheduling/appointment/cancel_selected.html", context
        )


@admin.register(AppointmentSeries)
class AppointmentSeriesAdmin(AuditedAdminMixin, PractitionerScopedAdmin):
    list_display = ["patient", "practitioner", "rrule", "first_start"]
    readonly_fields = ["patient", "practitioner", "appointment_type", "rrule", "first_start",
                       "timezone", "created_by"]  # fmt: skip


@admin.register(CalendarFeed)
class CalendarFeedAdmin(PractitionerScopedAdmin):
    list_display = ["practitioner", "created_at"]
    readonly_fields = ["token"]


@admin.register(SmartBookingJob)
class SmartBookingJobAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Smart-booking jobs, read-only: what was asked, what the worker did and why."""

    list_display = [
        "created_at",
        "patient",
        "status_label",
        "started_at",
        "completed_at",
        "took",
        "retry_count",
        "outcome",
    ]
    list_filter = ["status", "created_at"]
    search_fields = ["patient__first_name", "patient__last_name", "id", "error_message"]
    date_hierarchy = "created_at"
    list_select_related = ["patient", "requested_by"]
    fields = (
        "id",
        "patient",
        "requested_by",
        "status_label",
        "created_at",
        "started_at",
        "completed_at",
        "took",
        "worker_id",
        "retry_count",
        "error_message",
        "reason_list",
        "booked",
        "request_json",
        "nearest_json",
    )
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Status", ordering="status")
    def status_label(self, obj: SmartBookingJob) -> str:
        return status_badge(f"job-{obj.status}", obj.get_status_display())

    @admin.display(description="Took")
    def took(self, obj: SmartBookingJob) -> str:
        if obj.completed_at is None:
            return "—"
        seconds = (obj.completed_at - obj.created_at).total_seconds()
        return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"

    @admin.display(description="Reasons or error")
    def outcome(self, obj: SmartBookingJob) -> str:
        text = obj.error_message or "; ".join(obj.reasons or [])
        return text if len(text) <= 120 else text[:117] + "…"

    @admin.display(description="Reasons")
    def reason_list(self, obj: SmartBookingJob) -> str:
        if not obj.reasons:
            return "—"
        return format_html(
            "<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((r,) for r in obj.reasons))
        )

    @admin.display(description="Booked")
    def booked(self, obj: SmartBookingJob) -> str:
        rows = (obj.result or {}).get("appointments", [])
        if not rows:
            return "—"
        links = []
        for row in rows:
            url = reverse("admin:scheduling_appointment_change", args=[row["id"]])
            links.append((url, row.get("start", row["id"])))
        return format_html(
            "<ul>{}</ul>", format_html_join("", '<li><a href="{}">{}</a></li>', links)
        )

    @admin.display(description="Request")
    def request_json(self, obj: SmartBookingJob) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.request, indent=2, sort_keys=True))

    @admin.display(description="Nearest options (failed jobs)")
    def nearest_json(self, obj: SmartBookingJob) -> str:
        if not obj.nearest_options:
            return "—"
        return format_html("<pre>{}</pre>", json.dumps(obj.nearest_options, indent=2))


from . import admin_closures  # noqa: E402, F401  (closures and holidays: their own module)

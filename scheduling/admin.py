from django.contrib import admin

from .models import (
    Appointment,
    AppointmentEvent,
    AppointmentSeries,
    AppointmentType,
    CalendarFeed,
    TimeOff,
    WorkingHours,
)


@admin.register(AppointmentType)
class AppointmentTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "duration_minutes", "mode", "service_code", "is_active"]
    list_filter = ["mode", "is_active"]
    search_fields = ["name"]
    filter_horizontal = ["practitioners"]


@admin.register(WorkingHours)
class WorkingHoursAdmin(admin.ModelAdmin):
    list_display = ["practitioner", "weekday", "start_time", "end_time", "location"]
    list_filter = ["weekday", "location"]
    search_fields = ["practitioner__display_name"]
    list_select_related = ["practitioner", "location"]


@admin.register(TimeOff)
class TimeOffAdmin(admin.ModelAdmin):
    list_display = ["practitioner", "start", "end", "reason"]
    search_fields = ["practitioner__display_name", "reason"]
    date_hierarchy = "start"
    list_select_related = ["practitioner"]


class EventInline(admin.TabularInline):
    model = AppointmentEvent
    extra = 0
    can_delete = False
    readonly_fields = ["kind", "at", "by", "data"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Appointment)
class AppointmentAdmin(admin.ModelAdmin):
    list_display = ["start", "practitioner", "patient", "appointment_type", "status", "source"]
    list_filter = ["status", "source", "appointment_type", "practitioner"]
    search_fields = ["patient__last_name", "patient__first_name", "practitioner__display_name"]
    date_hierarchy = "start"
    list_select_related = ["practitioner", "patient", "appointment_type"]
    readonly_fields = [f.name for f in Appointment._meta.fields]
    inlines = [EventInline]

    def has_add_permission(self, request) -> bool:
        return False  # bookings go through the booking service (the board, the API)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AppointmentSeries)
class AppointmentSeriesAdmin(admin.ModelAdmin):
    list_display = ["patient", "practitioner", "rrule", "first_start"]
    readonly_fields = ["patient", "practitioner", "appointment_type", "rrule", "first_start",
                       "timezone", "created_by"]  # fmt: skip


@admin.register(CalendarFeed)
class CalendarFeedAdmin(admin.ModelAdmin):
    list_display = ["practitioner", "created_at"]
    readonly_fields = ["token"]

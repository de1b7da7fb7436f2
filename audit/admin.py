"""The audit trail in the clinic admin: a read-only list (filters by patient, user, action and
date), the events of one patient ("Who saw this record", linked from the patient's page) and
the export of any filtered list as CSV or JSON, itself recorded as an `export` event.

Only holders of `audit.view_auditevent` see it (clinic admins, audit/grants.py); exporting
needs `audit.export_auditevent`. Nothing here adds, changes or deletes an event.
"""

import csv
import json
from collections.abc import Iterator

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import path, reverse
from django.utils.http import urlencode
from django_tenants.utils import schema_context

from clinic.tenancy import tenant_connection

from . import services
from .models import AuditEvent

EXPORT_FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
EXPORT_COLUMNS = (
    "id",
    "occurred_at",
    "clinic",
    "action",
    "user_id",
    "user",
    "client",
    "patient_id",
    "object_type",
    "object_id",
    "object_label",
    "fields",
    "ip",
    "request_id",
    "method",
    "path",
)
PATIENT_PARAMETER = "patient"


def patient_events_url(patient_id: int) -> str:
    """The admin list of the events of one patient ("Who saw this record")."""
    changelist = reverse("admin:audit_auditevent_changelist")
    return f"{changelist}?{urlencode({PATIENT_PARAMETER: patient_id})}"


class PatientFilter(admin.SimpleListFilter):
    """`?patient=<id>`: one patient's events. Offered only once chosen (from the patient's
    page): listing every patient here would read the whole table."""

    title = "patient"
    parameter_name = PATIENT_PARAMETER

    def lookups(self, request, model_admin):
        value = self.value()
        return [(value, f"Patient #{value}")] if value else []

    def queryset(self, request, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(patient_id=int(value))


def _row(event: AuditEvent) -> dict:
    content_type = event.content_type
    return {
        "id": event.pk,
        "occurred_at": event.occurred_at,
        "clinic": event.schema_name,
        "action": event.action,
        "user_id": event.user_id,
        "user": event.user.email if event.user is not None else "",
        "client": event.client,
        "patient_id": event.patient_id,
        "object_type": f"{content_type.app_label}.{content_type.model}" if content_type else "",
        "object_id": event.object_id,
        "object_label": event.object_label,
        "fields": event.fields,
        "ip": event.ip,
        "request_id": event.request_id,
        "method": event.method,
        "path": event.path,
    }


class _Echo:
    """A file-like object whose write returns the line (csv.writer into a streamed body)."""

    def write(self, value: str) -> str:
        return value


def _rows(events: QuerySet[AuditEvent], schema: str) -> Iterator[dict]:
    """The events as export rows, read while the response streams: in the clinic's schema,
    named again, as the connection's may have moved on by then."""
    with schema_context(schema):
        for event in events.iterator(chunk_size=2000):
            yield _row(event)


def _csv_lines(rows: Iterator[dict]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        row["fields"] = ";".join(row["fields"])
        yield writer.writerow(["" if row[name] is None else row[name] for name in EXPORT_COLUMNS])


def _json_chunks(rows: Iterator[dict]) -> Iterator[str]:
    yield "["
    for index, row in enumerate(rows):
        yield ("," if index else "") + json.dumps(row, cls=DjangoJSONEncoder)
    yield "]"


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = [
        "occurred_at",
        "action",
        "user",
        "client",
        "patient_id",
        "content_type",
        "object_id",
        "object_label",
        "field_names",
        "ip",
        "path",
    ]
    list_filter = [PatientFilter, "action", ("user", admin.RelatedOnlyFieldListFilter)]
    date_hierarchy = "occurred_at"
    search_fields = ["request_id", "path", "object_id"]
    list_select_related = ["user", "content_type"]
    list_per_page = 100
    show_full_result_count = False  # a count of the whole table on every page costs a scan
    change_list_template = "admin/audit/auditevent/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="Fields")
    def field_names(self, obj: AuditEvent) -> str:
        return ", ".join(obj.fields)

    def get_urls(self):
        export = self.admin_site.admin_view(self.export_view)
        return [
            path("export/<str:fmt>/", export, name="audit_auditevent_export"),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra = {
            "may_export": request.user.has_perm("audit.export_auditevent"),
            "export_query": request.GET.urlencode(),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)

    def export_view(self, request: HttpRequest, fmt: str) -> StreamingHttpResponse:
        """The events of the list as filtered (the same query string), as CSV or JSON."""
        if fmt not in EXPORT_FORMATS or not request.user.has_perm("audit.export_auditevent"):
            raise PermissionDenied
        events = self.get_changelist_instance(request).get_queryset(request)
        patient = request.GET.get(PATIENT_PARAMETER, "")
        services.record(
            request,
            services.EXPORT,
            patient=int(patient) if patient.isdigit() else None,
            label=f"audit events ({fmt})",
        )
        rows = _rows(events, tenant_connection.schema_name)
        body = _csv_lines(rows) if fmt == "csv" else _json_chunks(rows)
        response = StreamingHttpResponse(body, content_type=EXPORT_FORMATS[fmt])
        response["Content-Disposition"] = f'attachment; filename="audit-events.{fmt}"'
        return response

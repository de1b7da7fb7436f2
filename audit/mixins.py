"""Recording the rows a view serves: one mixin for the API's viewsets, one for the admin.

Both record one event per row (a list page: one `read` per row on the page, so that "who saw
this record" is one indexed lookup by patient), each with the patient the row belongs to
(`services.patient_of`). Only answers that succeeded are recorded: a refused or failed request
served no data.
"""

from __future__ import annotations

import copy
from typing import Any

from django.contrib.admin import helpers
from django.db import models
from django.http import HttpRequest, HttpResponse

from . import services


def _key(obj: models.Model) -> tuple[str, Any]:
    return obj._meta.label_lower, obj.pk


def changes_tracked(obj: models.Model) -> dict[str, Any]:
    """The row's values now, for `changed_fields` after a write."""
    return {f.attname: copy.copy(getattr(obj, f.attname)) for f in obj._meta.concrete_fields}


def changed_fields(before: dict[str, Any], after: models.Model) -> list[str]:
    """The names of the fields whose value differs between `before` (`changes_tracked`) and the
    row `after` (values are compared, never kept)."""
    return [
        f.name
        for f in after._meta.concrete_fields
        if f.attname in before
        and not getattr(f, "auto_now", False)  # a change's time stamp, not what changed
        and before[f.attname] != getattr(after, f.attname)
    ]


class AuditedAPIMixin:
    """For DRF viewsets serving patient data: every row the view fetched (`get_object`) or
    rendered (`get_serializer(row)` / `get_serializer(page, many=True)`) is recorded when the
    answer succeeds: GET is a `read`, the `create` action a `create`, DELETE a `delete`, any
    other write an `update` naming the fields that changed between the row as fetched and as
    rendered. A view that renders without `get_serializer` calls `audit_serve(rows)`; an
    action that records its own events (an export) is named in `audit_own_actions`."""

    audit_own_actions: tuple[str, ...] = ()

    def initial(self, request, *args, **kwargs):
        self._audit_rows: dict[tuple[str, Any], models.Model] = {}
        self._audit_before: dict[tuple[str, Any], dict[str, Any]] = {}
        super().initial(request, *args, **kwargs)

    def audit_serve(self, rows) -> None:
        """Record `rows` (model rows) as served by this request."""
        audited = getattr(self, "_audit_rows", None)
        if audited is None:  # before `initial` (the schema generator, an early refusal)
            return
        for row in rows:
            if isinstance(row, models.Model) and row.pk is not None:
                audited[_key(row)] = row

    def get_object(self):
        obj = super().get_object()
        if hasattr(self, "_audit_before"):
            self._audit_before.setdefault(_key(obj), changes_tracked(obj))
        self.audit_serve([obj])
        return obj

    def get_serializer(self, *args, **kwargs):
        if args and args[0] is not None and "data" not in kwargs:
            self.audit_serve(args[0] if kwargs.get("many") else [args[0]])
        return super().get_serializer(*args, **kwargs)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        rows = getattr(self, "_audit_rows", None)
        own = getattr(self, "action", None) in self.audit_own_actions
        if rows and response.status_code < 400 and not own:
            self._audit_record(request, response, rows.values())
        return response

    def _audit_record(self, request, response, rows) -> None:
        method = request.method
        for row in rows:
            before = self._audit_before.get(_key(row))
            if method in ("GET", "HEAD"):
                services.record(request, services.READ, row)
            elif method == "DELETE":
                services.record(request, services.DELETE, row)
            elif before is None and getattr(self, "action", None) == "create":
                services.record(request, services.CREATE, row)
            else:
                fields = changed_fields(before, row) if before is not None else ()
                services.record(request, services.UPDATE, row, fields=fields)


class AuditedAdminMixin:
    """For ModelAdmins of patient data: the changelist records a `read` of every row on the
    page, the change page (and its history) a `read` of the row, a saved form a `create` or
    an `update` naming `form.changed_data` (inlines: their own rows), a deletion a `delete`,
    and an action an `update` of each selected row, labelled with the action's name."""

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)  # type: ignore[misc]  # a ModelAdmin mixin
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if response.status_code == 200 and changelist is not None:
            for row in changelist.result_list:
                services.record(request, services.READ, row)
        return response

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and request.method == "GET":
            services.record(request, services.READ, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def history_view(self, request, object_id, extra_context=None):
        response = super().history_view(request, object_id, extra_context)
        obj = (getattr(response, "context_data", None) or {}).get("object")
        if response.status_code == 200 and obj is not None:
            services.record(request, services.READ, obj)
        return response

    def construct_change_message(self, request, form, formsets, add=False):
        # The admin calls this once a form and its inlines are saved, whatever save_model does.
        obj = form.instance
        if add:
            services.record(request, services.CREATE, obj)
        else:
            services.record(request, services.UPDATE, obj, fields=form.changed_data)
        for formset in formsets or ():  # a formset a save_formset did not save has no lists
            for row in getattr(formset, "new_objects", ()):
                services.record(request, services.CREATE, row)
            for row, fields in getattr(formset, "changed_objects", ()):
                services.record(request, services.UPDATE, row, fields=fields)
            for row in getattr(formset, "deleted_objects", ()):
                services.record(request, services.DELETE, row)
        return super().construct_change_message(request, form, formsets, add)

    def delete_model(self, request, obj) -> None:
        services.record(request, services.DELETE, obj)
        super().delete_model(request, obj)  # type: ignore[misc]

    def delete_queryset(self, request, queryset) -> None:
        for row in queryset:
            services.record(request, services.DELETE, row)
        super().delete_queryset(request, queryset)  # type: ignore[misc]

    def response_action(self, request, queryset, *args, **kwargs):
        response = super().response_action(request, queryset, *args, **kwargs)
        name = request.POST.get("action", "")
        done = response is not None and response.status_code == 302
        if done and name != "delete_selected":  # deletions are recorded by delete_queryset
            if request.POST.get("select_across") != "1":
                queryset = queryset.filter(
                    pk__in=request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
                )
            for row in queryset:
                services.record(request, services.UPDATE, row, label=name)
        return response

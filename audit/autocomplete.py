"""The admin's autocomplete, audited: the names it offers are a read of those patients.

Django's `AutocompleteJsonView` (`/admin/autocomplete/?app_label=...&model_name=...&field_name=
...&term=...`, what an `autocomplete_fields` widget asks as staff type) answers with the rows
its search found, a patient's full name for each patient row. The clinic's URLs serve it through
this subclass (clinic/urls_tenants.py, ahead of the admin site's own route, as the admin's
sign-in is), so every row it returns that belongs to a patient (`services.patient_of`: a patient,
or a row carrying one) is a `read` event, one per row as on a list page (so "who saw this record"
finds it by patient), labelled "admin autocomplete"; the request's id ties them together. A
refused or failed request served no names and records nothing.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.db import models
from django.http import HttpRequest, HttpResponse

from . import services

AUTOCOMPLETE_LABEL = "admin autocomplete"


class AuditedAutocompleteJsonView(AutocompleteJsonView):
    """`AutocompleteJsonView` recording a `read` of every patient's row it answered with."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self._served: list[models.Model] = []
        response = super().get(request, *args, **kwargs)
        if response.status_code == 200:
            for row in self._served:
                if services.patient_of(row) is not None:
                    services.record(request, services.READ, row, label=AUTOCOMPLETE_LABEL)
        return response

    def serialize_result(self, obj: models.Model, to_field_name: str) -> dict[str, Any]:
        # Called once for each row in the answer, and only for those.
        self._served.append(obj)
        return super().serialize_result(obj, to_field_name)


def autocomplete_view(site: admin.AdminSite):
    """The view for `site`'s `autocomplete/` URL, behind the site's own staff check (as
    `AdminSite.get_urls` wraps its own)."""
    return site.admin_view(AuditedAutocompleteJsonView.as_view(admin_site=site))

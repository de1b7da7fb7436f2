"""The clinic admin's pages for closures and holidays (imported by scheduling/admin.py):
clinic-wide or one location's, from a first to a last day. What they close is the
availability engine's and the booking rules' to leave out (`availability.closed_on`)."""

from django import forms
from django.contrib import admin

from clinic.inputs import schedule_date_error

from .models import Closure


class ClosureForm(forms.ModelForm):
    class Meta:
        model = Closure
        fields = ["name", "start_date", "end_date", "location"]

    def clean(self):
        data = super().clean()
        for field in ("start_date", "end_date"):
            if data.get(field) and (message := schedule_date_error(data[field])):
                self.add_error(field, message)
        first, last = data.get("start_date"), data.get("end_date")
        if first and last and last < first:
            self.add_error("end_date", "The last day must not be before the first.")
        return data


@admin.register(Closure)
class ClosureAdmin(admin.ModelAdmin):
    form = ClosureForm
    list_display = ["name", "start_date", "end_date", "where"]
    list_filter = [("location", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name"]
    date_hierarchy = "start_date"
    list_select_related = ["location"]
    ordering = ["-start_date"]

    @admin.display(description="Where", ordering="location__name")
    def where(self, obj: Closure) -> str:
        return obj.location.name if obj.location else "Whole clinic"

"""The treatment-plan page (`/admin/scheduling/board/plan/`): a recurring series built from an
authorization line, for the front desk and the clinic admin. The form picks the line (and so
the patient), the weekdays, the time, the practitioner, the visit type, the first day and the
number of weeks; `scheduling.plans.treatment_plan_book` checks the plan against the line
(dates, units left, weekly cap: a refusal names the field to change) and books the series,
skipping and reporting the days the booking rules refuse (closures, time off, taken slots).
"""

from datetime import timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from audit import services as audit
from authorizations.models import Authorization, AuthorizationLine
from clinic.errors import ApplicationError
from clinic.inputs import schedule_date_error
from practice import formats
from practice.models import Practitioner
from practice.selectors import row_in_scope
from scheduling.models import AppointmentType
from scheduling.plans import MAX_PLAN_WEEKS, treatment_plan_book

WEEKDAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]


class LineChoice(forms.ModelChoiceField):
    def label_from_instance(self, line: AuthorizationLine) -> str:
        auth = line.authorization
        codes = ", ".join(code.code for code in line.service_codes.all())
        return (
            f"{auth.patient} · {auth.number} · {codes} · {line.units_remaining} of "
            f"{line.units_authorized} units left"
            + (f" · {line.weekly_cap}/week" if line.weekly_cap else "")
            + f" · to {formats.date_format(auth.end_date)}"
        )


class PlanForm(forms.Form):
    line = LineChoice(
        AuthorizationLine.objects.filter(authorization__status=Authorization.Status.ACTIVE)
        .select_related("authorization__patient")
        .prefetch_related("service_codes")
        .order_by("authorization__patient__last_name", "authorization__number", "id"),
        label="Authorization line",
    )
    appointment_type = forms.ModelChoiceField(
        AppointmentType.objects.filter(is_active=True, service_code__isnull=False).order_by("name"),
        label="Visit type",
    )
    practitioner = forms.ModelChoiceField(
        Practitioner.objects.filter(is_active=True).order_by("display_name")
    )
    weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS, coerce=int, widget=forms.CheckboxSelectMultiple
    )
    at = forms.TimeField(label="Time", widget=forms.TimeInput(attrs={"type": "time"}))
    first_day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    weeks = forms.IntegerField(min_value=1, max_value=MAX_PLAN_WEEKS, initial=8)

    def clean_first_day(self):
        day = self.cleaned_data["first_day"]
        if message := schedule_date_error(day):
            raise forms.ValidationError(message)
        return day


def plan_view(request: HttpRequest) -> HttpResponse:
    """GET: the form; POST: check and book, then the booked and skipped visits (or the
    refusal, on the field it names)."""
    user = request.user
    if not (
        user.has_perm("scheduling.book_appointment")
        and user.has_perm("authorizations.view_authorizationline")
    ):
        raise PermissionDenied
    tz = ZoneInfo(request.tenant.timezone)
    today = timezone.now().astimezone(tz).date()
    result = None
    if request.method == "POST":
        form = PlanForm(request.POST)
        if form.is_valid():
            v = form.cleaned_data
            patient = v["line"].authorization.patient
            if not row_in_scope(
                user=user,
                permission="scheduling.book_appointment",
                practitioner=v["practitioner"],
                patient=patient,
            ):
                raise PermissionDenied
            try:
                result = treatment_plan_book(
                    line=v["line"],
                    practitioner=v["practitioner"],
                    appointment_type=v["appointment_type"],
                    weekdays=v["weekdays"],
                    at=v["at"],
                    first_day=v["first_day"],
                    weeks=v["weeks"],
                    booked_by=user,
                )
            except ApplicationError as error:
                field = getattr(error, "field", None)
                form.add_error(field if field in form.fields else None, error.detail)
            else:
                for appointment in result.booked:
                    audit.record(request, audit.CREATE, appointment, label="treatment plan")
    else:
        form = PlanForm(initial={"first_day": today + timedelta(days=1), "weeks": 8})
    booked = [
        {"when": a.start.astimezone(tz), "practitioner": a.practitioner.display_name}
        for a in (result.booked if result else [])
    ]
    context = {
        **admin.site.each_context(request),
        "title": "Treatment plan from an authorization",
        "form": form,
        "result": result,
        "booked": booked,
        "timezone_name": tz.key,
    }
    return render(request, "backoffice/plan.html", context)

"""The patient's waitlist page: their entries, the offers held for them (each with its
accept / let-go page, the same as the email's signed link), and a form to join the waitlist
for a practitioner and visit type. The offers and entries follow the patient's waitlist
socket (`/ws/waitlist/`): each change fetches them again (`waitlist_live`, the same part of
the page, server-rendered). Reads are recorded in the audit trail."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from audit import services as audit
from practice.models import Practitioner
from realtime.links import websocket_url
from scheduling.models import AppointmentType
from waitlist import selectors, services
from waitlist.errors import EntryRefusedError
from waitlist.links import offer_link_path

from .access import patient_required
from .zones import in_viewer_zone

WEEKDAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]


class WaitlistForm(forms.Form):
    practitioner = forms.ModelChoiceField(queryset=Practitioner.objects.filter(is_active=True))
    appointment_type = forms.ModelChoiceField(
        queryset=AppointmentType.objects.filter(is_active=True), label="Visit type"
    )
    earliest_date = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    latest_date = forms.DateField(label="Until", widget=forms.DateInput(attrs={"type": "date"}))
    preferred_weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        label="Days that suit you (none: any)",
        widget=forms.CheckboxSelectMultiple,
    )
    preferred_start_time = forms.TimeField(
        required=False, label="Not before", widget=forms.TimeInput(attrs={"type": "time"})
    )
    preferred_end_time = forms.TimeField(
        required=False, label="Ending by", widget=forms.TimeInput(attrs={"type": "time"})
    )


@patient_required
@in_viewer_zone
def waitlist(request: HttpRequest) -> HttpResponse:
    patient = request.patient
    form = WaitlistForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            entry = services.entry_create(
                patient=patient, created_by=request.user, **form.cleaned_data
            )
        except EntryRefusedError as error:
            form.add_error(error.field if error.field in form.fields else None, error.detail)
        else:
            audit.record(request, audit.CREATE, entry)
            messages.success(
                request,
                entry.authorization_note
                or "You are on the waitlist: we email you when a time opens up.",
            )
            return redirect("portal:waitlist")
    return render(
        request,
        "portal/waitlist.html",
        {
            **_status(request),
            "form": form,
            "nav": "waitlist",
            "websocket_url": websocket_url(request, "/ws/waitlist/"),
            "live_url": reverse("portal:waitlist-live"),
        },
    )


@patient_required
@in_viewer_zone
def waitlist_live(request: HttpRequest) -> HttpResponse:
    """The offers and entries part of the waitlist page, as it is now (fetched by the page
    when its socket hears a change, and after every reconnect)."""
    return render(request, "portal/partials/waitlist_status.html", _status(request))


def _status(request: HttpRequest) -> dict:
    patient = request.patient
    entries = list(selectors.entry_list().filter(patient=patient).exclude(status="cancelled"))
    offers = list(selectors.patient_offers_open(patient))
    for row in [*entries, *offers]:
        audit.record(request, audit.READ, row)
    return {"entries": entries, "offers": [(offer, offer_link_path(offer)) for offer in offers]}

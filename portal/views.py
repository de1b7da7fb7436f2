"""The patient pages: find a practitioner, pick a slot, book, smart-book, manage visits.

Views parse the request, call a selector or a service, and render. Rules live in the services
(scheduling.services, scheduling.smart, practice.services); their refusals are shown on the
page that caused them, with the alternatives they carry.
"""

from datetime import datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from audit import services as audit
from audit.mixins import changed_fields, changes_tracked
from authorizations import selectors as auth_selectors
from authorizations import services as auth_services
from authorizations.errors import (
    AuthorizationExhaustedError,
    AuthorizationNotValidError,
    AuthorizationRequiredError,
    AuthorizationWeeklyCapError,
)
from billing import visit_fees
from clinic.errors import ApplicationError
from clinic.inputs import schedule_date_error
from practice import rights
from practice import selectors as practice_selectors
from practice.models import ClinicSettings, Location, Practitioner
from realtime.links import websocket_url
from scheduling import selectors, services, states
from scheduling.calendar import appointment_ics
from scheduling.errors import LateCancelError, SlotUnavailableError, SmartRequestInvalidError
from scheduling.models import Appointment, AppointmentType, SmartBookingJob
from scheduling.smart.job import smart_job_create
from scheduling.smart.request import smart_request_parse

from . import forms
from .access import bad_link, forbidden, is_staff_user, not_found, patient_required
from .weeks import options_from, parse_day, slot_week
from .zones import in_viewer_zone, zone_choices

PAGE_SIZE = 12
AUTHORIZATION_ERRORS = (
    AuthorizationRequiredError,
    AuthorizationExhaustedError,
    AuthorizationNotValidError,
    AuthorizationWeeklyCapError,
)


# --- Links -------------------------------------------------------------------------------------


def _book_url(*, practitioner_id: int, type_id: int, start: datetime, location_id=None) -> str:
    query = {"practitioner": practitioner_id, "type": type_id, "start": start.isoformat()}
    if location_id:
        query["location"] = location_id
    return f"{reverse('portal:book')}?{urlencode(query)}"


def _reschedule_url(appointment: Appointment, start: datetime) -> str:
    path = reverse("portal:reschedule-confirm", args=[appointment.pk])
    return f"{path}?{urlencode({'start': start.isoformat()})}"


# --- Home and the directory ----------------------------------------------------------------------


@in_viewer_zone
def home(request: HttpRequest) -> HttpResponse:
    """The clinic's front page: who they are, where, what they treat; a search box."""
    return render(
        request,
        "portal/home.html",
        {
            "specialties": practice_selectors.specialty_list(),
            "locations": practice_selectors.location_list(),
            "nav": "home",
        },
    )


@in_viewer_zone
def practitioners(request: HttpRequest) -> HttpResponse:
    """Find a practitioner: filters, then cards with the next free slot of each."""
    types = list(AppointmentType.objects.filter(is_active=True).order_by("name"))
    form = forms.FinderForm(
        request.GET or None,
        specialties=practice_selectors.specialty_list(),
        languages=practice_selectors.practitioner_languages(),
        locations=practice_selectors.location_list(),
        types=types,
    )
    filters = form.cleaned_data if form.is_bound and form.is_valid() else {}
    location = filters.get("location") or None
    found = practice_selectors.practitioner_search(
        q=filters.get("q") or "",
        specialty=[filters["specialty"]] if filters.get("specialty") else [],
        language=[filters["language"]] if filters.get("language") else [],
        location=location,
        telehealth=True if filters.get("telehealth") else None,
        accepting=True if filters.get("accepting") else None,
        # a location means slots there (scheduling's search extension), not a linked name
        extra={"location": str(location)} if location else None,
    )
    chosen_type = next((t for t in types if t.pk == filters.get("type")), None)
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    cards = list(page.object_list)
    next_free = selectors.next_free_slots(
        practitioner_ids=[p.pk for p in cards], appointment_type=chosen_type, location_id=location
    )
    for practitioner in cards:
        slot, kind = next_free.get(practitioner.pk, (None, None))
        practitioner.next_slot = slot
        # where that slot is held (the filter's location, when there is one)
        practitioner.next_slot_place = next(
            (
                place["name"]
                for place in practitioner.location_list or ()
                if slot is not None and place["id"] == slot.location_id
            ),
            None,
        )
        practitioner.next_slot_url = (
            _practitioner_url(practitioner.pk, kind.pk, slot.start, location=location)
            if slot
            else None
        )
        practitioner.times_url = _practitioner_url(
            practitioner.pk, chosen_type.pk if chosen_type else None, location=location
        )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "portal/practitioners.html",
        {
            "form": form,
            "page": page,
            "cards": cards,
            "query": query.urlencode(),
            "chosen_type": chosen_type,
            "nav": "find",
        },
    )


def _practitioner_url(
    practitioner_id: int,
    type_id: int | None,
    start: datetime | None = None,
    *,
    location: int | None = None,
) -> str:
    query: dict[str, object] = {"type": type_id} if type_id else {}
    if start is not None:
        query["from"] = timezone.localtime(start).date().isoformat()
    if location:
        query["location"] = location
    path = reverse("portal:practitioner", args=[practitioner_id])
    return f"{path}?{urlencode(query)}" if query else path


def _viewer_patient(request: HttpRequest):
    """The signed-in patient on a page anyone may open (None for visitors and staff)."""
    if not request.user.is_authenticated or is_staff_user(request.user):
        return None
    return practice_selectors.patient_get_for_user(user=request.user)


def _authorization_need(kind: AppointmentType, patient) -> auth_selectors.AuthorizationNeed | None:
    """What the patient's authorizations say about booking `kind`, where the clinic refuses
    visits an authorization does not cover (None: nothing to check). Said before any slot."""
    code = kind.service_code
    if code is None or not code.requires_authorization:
        return None
    if ClinicSettings.load().authorization_policy != ClinicSettings.AuthorizationPolicy.REFUSE:
        return None
    return auth_selectors.authorization_need(
        patient=patient,
        service_code=code,
        units=auth_services.units_for_visit(minutes=kind.duration_minutes, service_code=code),
        today=timezone.localdate(),
    )


def _bookable(need: auth_selectors.AuthorizationNeed | None, practitioner: Practitioner):
    """The slot filter of a patient whose visits an authorization pays: days it covers with
    the units of one visit (the day in the practitioner's zone, as the ledger counts it)."""
    if need is None or need.state == "not_needed":
        return None
    zone = ZoneInfo(practitioner.timezone)
    return lambda slot: need.covers(slot.start.astimezone(zone).date(), need.units)


def _chosen_location(request: HttpRequest, practitioner: Practitioner) -> Location | None:
    """The location the finder was filtered by (`?location=`), when it is one of the
    practitioner's active locations; otherwise none (every location's slots)."""
    raw = request.GET.get("location") or ""
    if not raw.isdigit():
        return None
    return practitioner.locations.filter(pk=int(raw), is_active=True).first()


@in_viewer_zone
def practitioner(request: HttpRequest, pk: int) -> HttpResponse:
    """A practitioner's page: who they are, and a week of free slots for the chosen visit type
    in the viewer's zone."""
    found = practice_selectors.practitioner_get(pk=pk)
    if found is None:
        return not_found(request, _("This practitioner is not in the directory."))
    types = list(selectors.appointment_types_offered(practitioner=found))
    chosen = next((t for t in types if str(t.pk) == request.GET.get("type")), None)
    chosen = chosen or (types[0] if types else None)
    week = None
    patient = _viewer_patient(request)
    need = _authorization_need(chosen, patient) if chosen is not None else None
    if need is not None and need.request is not None:
        audit.record(request, audit.READ, need.request)
    place = _chosen_location(request, found)
    if chosen is not None and not (need and need.blocks_booking):
        week = slot_week(
            practitioner=found,
            appointment_type=chosen,
            first_day=parse_day(request.GET.get("from"), timezone.localdate()),
            link=lambda slot: _book_url(
                practitioner_id=found.pk,
                type_id=chosen.pk,
                start=slot.start,
                location_id=slot.location_id,
            ),
            keep={"type": chosen.pk, **({"location": place.pk} if place else {})},
            bookable=_bookable(need, found) if patient is not None else None,
            location=place,
        )
    return render(
        request,
        "portal/practitioner.html",
        {
            "practitioner": found,
            "types": types,
            "chosen_type": chosen,
            "week": week,
            "need": need,
            "signed_in_patient": patient,
            "zones": zone_choices(request.viewer_zone.key, request.tenant.timezone),
            "place": place,  # the location the times keep to: its number to call first
            "nav": "find",
        },
    )


# --- Booking -------------------------------------------------------------------------------------


def _modes(practitioner: Practitioner, kind: AppointmentType, location: Location | None) -> list:
    """How this slot can be held: in person (at its location) and/or by video."""
    mode = kind.mode
    video = mode != AppointmentType.Mode.IN_PERSON and practitioner.offers_telehealth
    in_person = mode != AppointmentType.Mode.TELEHEALTH and location is not None
    return [
        m for m, ok in ((forms.MODE_IN_PERSON, in_person), (forms.MODE_TELEHEALTH, video)) if ok
    ]


@require_http_methods(["GET", "POST"])
@patient_required
@in_viewer_zone
def book(request: HttpRequest) -> HttpResponse:
    """The confirmation step (GET) and the booking (POST). A slot taken meanwhile answers 409
    with the nearest free times in place; any other refusal says why."""
    form = forms.BookingForm(request.POST if request.method == "POST" else request.GET)
    if not form.is_valid() or schedule_date_error(form.cleaned_data["start"]):
        return bad_link(request)
    v = form.cleaned_data
    who, kind, location = v["practitioner"], v["type"], v["location"]
    if location is None and kind.mode != AppointmentType.Mode.TELEHEALTH:
        # A link without a place (a smart-booking option): where the practitioner works then.
        location = selectors.slot_location(
            practitioner=who, appointment_type=kind, start=v["start"]
        )
    modes = _modes(who, kind, location)
    mode = v["mode"] or (modes[0] if modes else "")
    if mode not in modes:
        return bad_link(request)
    context = {
        "practitioner": who,
        "appointment_type": kind,
        "start": v["start"],
        "end": v["start"] + timedelta(minutes=kind.duration_minutes),
        "location": location,
        "modes": modes,
        "mode": mode,
        "idempotency_key": v["idempotency_key"] or forms.BookingForm.new_key(),
        "back_url": _practitioner_url(who.pk, kind.pk, v["start"]),
        "nav": "find",
    }
    # The late-change rule for this very time, said before the patient commits (a visit two
    # hours away cannot be changed online once booked: the page says so, with the number).
    context["change_deadline"] = states.start_change_deadline(v["start"])
    context["change_late"] = context["change_deadline"] <= timezone.now()
    context["fee_policy"] = visit_fees.policy_for(kind)  # this visit type's fees
    need = _authorization_need(kind, request.patient)
    if need is not None and need.blocks_booking:
        # Before the patient commits: what is needed, and the request, instead of a refusal
        # after "Confirm booking".
        context["need"] = need
        status = 409 if request.method == "POST" else 200
        return render(request, "portal/book.html", context, status=status)
    if request.method == "GET":
        return render(request, "portal/book.html", context)
    video = mode == forms.MODE_TELEHEALTH
    try:
        appointment = services.appointment_book(
            patient=request.patient,
            practitioner=who,
            appointment_type=kind,
            start=v["start"],
            booked_by=request.user,
            source=Appointment.Source.PORTAL,
            location=None if video else location,
            telehealth=video,
            idempotency_key=context["idempotency_key"],
        )
    except SlotUnavailableError as error:
        context["taken"] = True
        context["alternatives"] = options_from(
            error.extra.get("suggested_alternatives", []),
            url_for=lambda item, start: _book_url(
                practitioner_id=item["practitioner"],
                type_id=kind.pk,
                start=start,
                location_id=item.get("location"),
            ),
        )
        return render(request, "portal/book.html", context, status=error.status)
    except AUTHORIZATION_ERRORS as error:
        context["refusal"] = error.detail
        context["need"] = _authorization_need(kind, request.patient)
        return render(request, "portal/book.html", context, status=error.status)
    except ApplicationError as error:
        context["refusal"] = error.detail
        return render(request, "portal/book.html", context, status=error.status)
    audit.record(request, audit.CREATE, appointment)
    return redirect(f"{reverse('portal:appointment', args=[appointment.pk])}?booked=1")


# --- Requests for an assessment / authorization -------------------------------------------------


@require_http_methods(["POST"])
@patient_required
def authorization_request(request: HttpRequest) -> HttpResponse:
    """ "Request an assessment / authorization" for a visit type that needs one: the request
    goes to the front desk's queue; its status shows on My appointments."""
    form = forms.AuthorizationRequestForm(request.POST)
    if not form.is_valid():
        return bad_link(request)
    kind = form.cleaned_data["type"]
    code = kind.service_code
    if code is None or not code.requires_authorization:
        return bad_link(request)
    try:
        sent = auth_services.authorization_request_create(
            patient=request.patient,
            service_code=code,
            by=request.user,
            visit_name=kind.name,
            message=form.cleaned_data["message"],
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("portal:appointments")
    audit.record(request, audit.CREATE, sent)
    messages.success(
        request,
        _(
            "Your request is with the clinic. They will contact your insurer and answer "
            "here; you can book as soon as it is approved."
        ),
    )
    return redirect(f"{reverse('portal:appointments')}#requests")


# --- My appointments -----------------------------------------------------------------------------


def _own_appointment(request: HttpRequest, pk: int) -> Appointment | HttpResponse:
    """The signed-in patient's appointment; 404 when there is none with this id, 403 (not 404:
    the patient pages say plainly that it is not theirs) when it is another patient's."""
    appointment = selectors.appointment_list().filter(pk=pk).first()
    if appointment is None:
        return not_found(request, _("There is no appointment with this number."))
    if appointment.patient_id != request.patient.pk:
        return forbidden(
            request,
            code="not-your-appointment",
            detail=_("This appointment belongs to another patient."),
        )
    return appointment


def _with_change_rules(
    request: HttpRequest, appointments: list[Appointment], now: datetime
) -> list[Appointment]:
    """What the patient may still change online, as the state machine says
    (`scheduling.states`): the pages offer cancel and reschedule together."""
    clinic_settings = ClinicSettings.load()
    for appointment in appointments:
        appointment.change_deadline = states.change_deadline(
            appointment, clinic_settings=clinic_settings
        )
        appointment.can_change_online = all(
            states.transition_allowed(
                appointment, action, user=request.user, now=now, clinic_settings=clinic_settings
            )
            for action in (states.CANCEL, states.RESCHEDULE)
        )
        appointment.is_upcoming = appointment.is_active and appointment.end > now
    return appointments


@patient_required
@in_viewer_zone
def appointments(request: HttpRequest) -> HttpResponse:
    """Upcoming and past visits, with what can still be changed online, and units left."""
    now = timezone.now()
    upcoming, past = selectors.patient_appointments(patient=request.patient, now=now)
    authorizations = list(auth_selectors.authorizations_for_patient(patient=request.patient))
    requests = auth_selectors.authorization_requests_for_patient(patient=request.patient)
    for row in [*upcoming, *past, *authorizations, *requests]:
        audit.record(request, audit.READ, row)
    return render(
        request,
        "portal/appointments.html",
        {
            "upcoming": _with_change_rules(request, upcoming, now),
            "past": past,
            "authorizations": authorizations,
            "authorization_requests": requests,
            "late_cancel_hours": ClinicSettings.load().late_cancel_hours,
            "nav": "appointments",
        },
    )


@patient_required
@in_viewer_zone
def appointment(request: HttpRequest, pk: int) -> HttpResponse:
    """One visit (the confirmation page after booking): when, where, the .ics and the video
    link, and what can still be changed online."""
    found = _own_appointment(request, pk)
    if isinstance(found, HttpResponse):
        return found
    _with_change_rules(request, [found], timezone.now())
    audit.record(request, audit.READ, found)
    return render(
        request,
        "portal/appointment.html",
        {
            "appointment": found,
            "just_booked": request.GET.get("booked") == "1",
            "late_cancel_hours": ClinicSettings.load().late_cancel_hours,
            "nav": "appointments",
        },
    )


@patient_required
def appointment_calendar(request: HttpRequest, pk: int) -> HttpResponse:
    """The visit as an iCalendar file (times in UTC; calendars show them in their own zone)."""
    found = _own_appointment(request, pk)
    if isinstance(found, HttpResponse):
        return found
    audit.record(request, audit.READ, found, label="appointment .ics")
    response = HttpResponse(appointment_ics(found), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="appointment-{found.pk}.ics"'
    return response


@require_http_methods(["GET", "POST"])
@patient_required
@in_viewer_zone
def appointment_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel online, up to the clinic's late-cancel window; after it, a clear message (409)."""
    found = _own_appointment(request, pk)
    if isinstance(found, HttpResponse):
        return found
    _with_change_rules(request, [found], timezone.now())
    form = forms.CancelForm(request.POST if request.method == "POST" else None)
    context = {
        "appointment": found,
        "form": form,
        "late_cancel_hours": ClinicSettings.load().late_cancel_hours,
        "nav": "appointments",
    }
    if request.method == "POST" and form.is_valid():
        before = changes_tracked(found)
        try:
            cancelled = services.appointment_cancel(
                appointment=found, by=request.user, reason=form.cleaned_data["reason"]
            )
        except LateCancelError as error:
            context["refusal"] = error.detail
            context["late"] = True
            return render(request, "portal/cancel.html", context, status=error.status)
        except ApplicationError as error:
            context["refusal"] = error.detail
            return render(request, "portal/cancel.html", context, status=error.status)
        audit.record(request, audit.UPDATE, cancelled, fields=changed_fields(before, cancelled))
        messages.success(request, _("Your appointment is cancelled."))
        return redirect("portal:appointments")
    audit.record(request, audit.READ, found)
    return render(request, "portal/cancel.html", context)


@patient_required
@in_viewer_zone
def appointment_reschedule(request: HttpRequest, pk: int) -> HttpResponse:
    """Pick a new time with the same practitioner (the visit's own slot counts as free)."""
    found = _own_appointment(request, pk)
    if isinstance(found, HttpResponse):
        return found
    _with_change_rules(request, [found], timezone.now())
    week = None
    if found.can_change_online:
        week = slot_week(
            practitioner=found.practitioner,
            appointment_type=found.appointment_type,
            first_day=parse_day(request.GET.get("from"), timezone.localdate()),
            link=lambda slot: _reschedule_url(found, slot.start),
            keep={},
            exclude_appointment_id=found.pk,
        )
    audit.record(request, audit.READ, found)
    return render(
        request,
        "portal/reschedule.html",
        {
            "appointment": found,
            "week": week,
            "zones": zone_choices(request.viewer_zone.key, request.tenant.timezone),
            "late_cancel_hours": ClinicSettings.load().late_cancel_hours,
            "nav": "appointments",
        },
    )


@require_http_methods(["GET", "POST"])
@patient_required
@in_viewer_zone
def appointment_reschedule_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm the move (GET), then move (POST): atomically, the old time is freed only when
    the new one is held. A new time taken meanwhile shows the nearest free ones (409)."""
    found = _own_appointment(request, pk)
    if isinstance(found, HttpResponse):
        return found
    form = forms.RescheduleForm(request.POST if request.method == "POST" else request.GET)
    if not form.is_valid() or schedule_date_error(form.cleaned_data["start"]):
        return bad_link(request)
    start = form.cleaned_data["start"]
    context = {
        "appointment": found,
        "start": start,
        "end": start + (found.end - found.start),
        "nav": "appointments",
    }
    if request.method == "GET":
        audit.record(request, audit.READ, found)
        return render(request, "portal/reschedule_confirm.html", context)
    before = changes_tracked(found)
    try:
        moved = services.appointment_reschedule(appointment=found, start=start, by=request.user)
    except SlotUnavailableError as error:
        context["taken"] = True
        context["alternatives"] = options_from(
            error.extra.get("suggested_alternatives", []),
            # A reschedule keeps the practitioner: only their own free times are offered.
            url_for=lambda item, when: (
                _reschedule_url(found, when)
                if item["practitioner"] == found.practitioner_id
                else None
            ),
        )
        return render(request, "portal/reschedule_confirm.html", context, status=error.status)
    except ApplicationError as error:
        context["refusal"] = error.detail
        return render(request, "portal/reschedule_confirm.html", context, status=error.status)
    audit.record(request, audit.UPDATE, moved, fields=changed_fields(before, moved))
    messages.success(request, _("Your appointment has been moved."))
    return redirect("portal:appointment", pk=found.pk)


# --- Smart booking -------------------------------------------------------------------------------


def _smart_form(request: HttpRequest, data=None) -> forms.SmartBookingForm:
    initial = {}
    if request.GET.get("practitioner", "").isdigit():
        initial["practitioner"] = int(request.GET["practitioner"])
    if request.GET.get("specialty"):
        initial["specialty"] = request.GET["specialty"]
    return forms.SmartBookingForm(
        data,
        initial=initial,
        specialties=practice_selectors.specialty_list(),
        types=AppointmentType.objects.filter(is_active=True).order_by("name"),
        locations=practice_selectors.location_list(),
        languages=practice_selectors.practitioner_languages(),
    )


@require_http_methods(["GET", "POST"])
@patient_required
@in_viewer_zone
def smart_new(request: HttpRequest) -> HttpResponse:
    """Describe the need; the job is validated by the same rules as the API's and queued."""
    form = _smart_form(request, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            smart_request = smart_request_parse(
                form.to_request(tz=request.viewer_zone.key),
                default_tz=request.tenant.timezone,
            )
            job = smart_job_create(
                patient=request.patient,
                request=smart_request.to_job_request(),
                requested_by=request.user,
            )
        except SmartRequestInvalidError as error:
            for field, texts in error.errors.items():
                name = field if field in form.fields else None
                for text in texts:
                    form.add_error(name, text)
        except ValidationError as error:
            if "patient" not in error.message_dict:
                raise
            form.add_error(None, _("Your patient record is inactive. Please call the clinic."))
        else:
            audit.record(request, audit.CREATE, job)
            return redirect("portal:smart-status", job_id=job.pk)
    practitioner_id = form["practitioner"].value()
    chosen = (
        practice_selectors.practitioner_get(pk=int(practitioner_id))
        if str(practitioner_id or "").isdigit()
        else None
    )
    return render(
        request,
        "portal/smart_new.html",
        {"form": form, "practitioner": chosen, "nav": "smart"},
        status=400 if form.is_bound and form.errors else 200,
    )


def _own_job(request: HttpRequest, job_id) -> SmartBookingJob | HttpResponse:
    job = selectors.smart_job_get(job_id=job_id)
    if job is None:
        return not_found(request, _("There is no such booking request."))
    if job.patient_id != request.patient.pk:
        return forbidden(
            request, code="not-your-request", detail=_("This request belongs to another patient.")
        )
    return job


def _job_context(request: HttpRequest, job: SmartBookingJob) -> dict:
    kind_id = job.request.get("appointment_type")
    booked = list(
        selectors.appointment_list(patient=request.patient)
        .filter(smart_job_id=job.pk)
        .order_by("start")
    )
    for row in [job, *booked]:
        audit.record(request, audit.READ, row)
    nearest = options_from(
        job.nearest_options,
        url_for=lambda item, start: _book_url(
            practitioner_id=item["practitioner"], type_id=kind_id, start=start
        ),
    )
    return {
        "job": job,
        "booked": booked,
        "nearest": nearest,
        "steps": _steps(job.status),
        "nav": "smart",
    }


def _steps(status: str) -> list[dict]:
    """The stepper of the status page: queued -> looking for slots -> booked (or why not)."""
    Status = SmartBookingJob.Status
    order = [Status.QUEUED, Status.RUNNING, Status.COMPLETED]
    last = {
        Status.FAILED: _("Could not book"),
        Status.CANCELLED: _("Cancelled"),
    }.get(status, _("Booked"))
    labels = [_("Request received"), _("Looking for slots"), last]
    position = 2 if status in SmartBookingJob.FINAL else order.index(status)
    steps = []
    for index, label in enumerate(labels):
        state = "done" if index < position else "current" if index == position else "todo"
        if index == 2 and status in SmartBookingJob.FINAL:
            state = "done" if status == Status.COMPLETED else "failed"
        steps.append({"label": label, "state": state})
    return steps


@patient_required
@in_viewer_zone
def smart_status(request: HttpRequest, job_id) -> HttpResponse:
    """The job's live status page: the websocket pushes each transition (polling `status_url`
    when the socket fails) and the page swaps in `smart_status_fragment`."""
    job = _own_job(request, job_id)
    if isinstance(job, HttpResponse):
        return job
    context = _job_context(request, job)
    context.update(
        websocket_url=websocket_url(request, f"/ws/jobs/{job.pk}/"),
        status_url=reverse("smart-booking-detail", args=[job.pk]),
        fragment_url=reverse("portal:smart-status-fragment", args=[job.pk]),
    )
    return render(request, "portal/smart_status.html", context)


@patient_required
@in_viewer_zone
def smart_status_fragment(request: HttpRequest, job_id) -> HttpResponse:
    job = _own_job(request, job_id)
    if isinstance(job, HttpResponse):
        return job
    return render(request, "portal/partials/smart_job.html", _job_context(request, job))


# --- Your data ---------------------------------------------------------------------------------


@patient_required
@in_viewer_zone
@require_http_methods(["GET", "POST"])
def my_data(request: HttpRequest) -> HttpResponse:
    """Your data: download a copy (JSON, PDF) and ask the clinic to erase your record. The
    clinic reviews the request (it must keep some records by law) and answers here."""
    form = forms.ErasureRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            rights.erasure_request(
                patient=request.patient, by=request.user, message=form.cleaned_data["message"]
            )
        except ApplicationError as error:
            messages.error(request, error.detail)
        else:
            messages.success(request, _("Your request was sent. The clinic will answer here."))
        return redirect("portal:my-data")
    requests = list(request.patient.erasures.order_by("-requested_at", "-id"))
    for row in requests:
        audit.record(request, audit.READ, row)
    return render(
        request,
        "portal/my_data.html",
        {
            "form": form,
            "requests": requests,
            "formats": rights.EXPORT_FORMATS,
            "nav": "data",
        },
    )


@patient_required
def my_data_download(request: HttpRequest, fmt: str) -> HttpResponse:
    """Your copy as a file: everything the clinic holds about you but its staff's notes."""
    if fmt not in rights.EXPORT_FORMATS:
        return not_found(request)
    document = rights.patient_export(patient=request.patient, staff=False, request=request)
    content, media_type, filename = rights.patient_export_file(document, fmt)
    response = HttpResponse(content, content_type=media_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

"""The schedule board (`/admin/scheduling/board/`): a day, or a week, of appointments in columns
per practitioner, in the clinic's time zone, inside the clinic's admin.

Every action goes through the scheduling services the API uses (`appointment_book`,
`_check_in`, `_complete`, `_no_show`, `_cancel`), so the exclusion constraint, the unit ledger
and the events apply unchanged, and a refusal answers with the API's problem JSON (a taken
slot: 409 with `conflicting_appointments` and `suggested_alternatives`). The page listens on
`/ws/schedule/` (scheduling.consumers) and re-renders its grid when anyone changes the schedule.
Who may do what comes from the grants (scheduling/grants.py, through `user.has_perm`); a grant's
row scope narrows what it reaches (`practice.selectors.rows_in_scope`): practitioners see and
act on their own column only. Which actions a visit offers (status, permission, and
when: check-in on the visit's day, complete and no-show from its start) is the appointment's
state machine, `scheduling.states.TRANSITIONS`.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import wraps
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import DataError, IntegrityError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from audit import services as audit
from audit.mixins import changed_fields, changes_tracked
from clinic.errors import PROBLEM_CONTENT_TYPE, ApplicationError, problem
from practice import formats
from practice.models import ClinicSettings, Location, Patient, Practitioner, Specialty
from practice.selectors import row_in_scope, rows_in_scope
from realtime.links import websocket_url
from scheduling import selectors, services, states
from scheduling.availability import Closed, closures_between
from scheduling.models import ACTIVE_STATUSES, Appointment, AppointmentType
from waitlist import selectors as waitlist_selectors

from .plans import plan_view

Status = Appointment.Status
DEFAULT_HOURS = (8, 18)  # the grid shows at least 08:00-18:00, more when hours or visits need it
MAX_DAYS_AWAY = 3660  # dates further from today are typos (and date arithmetic must not overflow)


@dataclass(frozen=True)
class BoardAction:
    transition: str  # its row of scheduling.states.TRANSITIONS: statuses, permission, when
    label: str

    @property
    def permission(self) -> str:
        return states.TRANSITIONS[self.transition].permission


ACTIONS = {
    "check-in": BoardAction(states.CHECK_IN, "Check in"),
    "complete": BoardAction(states.COMPLETE, "Complete"),
    "no-show": BoardAction(states.NO_SHOW, "No-show"),
    "cancel": BoardAction(states.CANCEL, "Cancel"),
}


def _run_action(action: str, appointment: Appointment, request: HttpRequest) -> Appointment:
    by = request.user
    if action == "check-in":
        return services.appointment_check_in(appointment=appointment, by=by)
    if action == "complete":
        return services.appointment_complete(appointment=appointment, by=by)
    if action == "no-show":
        return services.appointment_no_show(appointment=appointment, by=by)
    reason = request.POST.get("reason", "").strip()
    return services.appointment_cancel(appointment=appointment, by=by, reason=reason)


def _may(user, permission: str) -> bool:
    return user.has_perm(f"scheduling.{permission}_appointment")


# --- JSON answers: the API's problem shape ---------------------------------------------------


def _problem(status: int, code: str, detail: str, **extra) -> JsonResponse:
    body = problem(status=status, code=code, detail=detail, extra=extra or None)
    return JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)


def json_errors(view):
    """Answer a board endpoint's refusals as problem JSON (the API's shape), never a 500."""

    @wraps(view)
    def run(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except ApplicationError as error:
            body = problem(
                status=error.status,
                code=error.code,
                detail=error.detail,
                title=error.title,
                extra=error.extra,
            )
            return JsonResponse(body, status=error.status, content_type=PROBLEM_CONTENT_TYPE)
        except PermissionDenied:
            return _problem(403, "permission-denied", "Your role does not allow this.")
        except Http404:
            return _problem(404, "not-found", "No such appointment on your board.")
        except (IntegrityError, DataError):
            return _problem(409, "constraint-violation", "The database refused the change.")

    return run


# --- The page --------------------------------------------------------------------------------


@dataclass
class Placed:
    """Something drawn in a day column: minutes from the grid's first hour (wall clock)."""

    top: int
    length: int
    lane: int = 0
    lanes: int = 1
    data: dict = field(default_factory=dict)

    @property
    def bottom(self) -> int:
        return self.top + self.length


def _wall_minutes(moment: datetime, day: date, tz: ZoneInfo) -> int:
    """Minutes from `day` 00:00 on the wall clock of `tz` (so hour labels stay right on DST
    days)."""
    local = moment.astimezone(tz)
    return (local.date() - day).days * 1440 + local.hour * 60 + local.minute


def _clock(moment: datetime, tz: ZoneInfo) -> str:
    """The clinic's clock: '2:30 PM' (en-US), '14:30' (en-IE)."""
    return formats.time_format(moment, zone=tz)


def _hour_label(day: date, hour: int, tz: ZoneInfo) -> str:
    """An hour line of the grid in the clinic's clock ('9:00 AM' / '09:00'); a grid reaching
    past midnight names the next day's hours."""
    return formats.time_format(datetime.combine(day, time(hour % 24), tzinfo=tz), zone=tz)


def _assign_lanes(items: list[Placed]) -> None:
    """Side by side where visits overlap (overbooked, or shown with cancelled ones)."""
    cluster: list[Placed] = []
    lane_ends: list[int] = []
    cluster_end = -1

    def close() -> None:
        for item in cluster:
            item.lanes = len(lane_ends)

    for item in sorted(items, key=lambda i: (i.top, -i.length)):
        if cluster and item.top >= cluster_end:
            close()
            cluster, lane_ends = [], []
        for index, end in enumerate(lane_ends):
            if end <= item.top:
                item.lane, lane_ends[index] = index, item.bottom
                break
        else:
            item.lane = len(lane_ends)
            lane_ends.append(item.bottom)
        cluster.append(item)
        cluster_end = max(cluster_end, item.bottom)
    close()


def _units_label(appointment: Appointment) -> str:
    reservation = appointment.unit_reservation
    if reservation is None:
        return ""
    units = "unit" if reservation.units == 1 else "units"
    return (
        f"{reservation.units} {units} {reservation.get_state_display().lower()} · "
        f"{reservation.line.authorization.number}"
    )


def _appointment_info(
    appointment: Appointment, practitioner: Practitioner, tz: ZoneInfo, user, now: datetime
) -> dict:
    local = appointment.start.astimezone(tz)
    actions = [
        {"name": name, "label": action.label}
        for name, action in ACTIONS.items()
        if states.transition_allowed(appointment, action.transition, user=user, now=now, zone=tz)
    ]
    movable = states.transition_allowed(appointment, states.RESCHEDULE, user=user, now=now, zone=tz)
    return {
        "id": appointment.pk,
        "patient": str(appointment.patient),
        "practitioner": practitioner.display_name,
        "practitioner_id": practitioner.pk,
        "type": appointment.appointment_type.name,
        "type_id": appointment.appointment_type_id,
        "start": appointment.start.isoformat(),
        "local_date": local.date().isoformat(),
        "local_time": local.strftime("%H:%M"),
        "movable": movable,
        "date": formats.date_format(local, style="long"),
        "time": f"{_clock(appointment.start, tz)}–{_clock(appointment.end, tz)}",
        "start_clock": _clock(appointment.start, tz),
        "status": appointment.status,
        "status_label": appointment.get_status_display(),
        "location": appointment.location.name if appointment.location else "",
        "telehealth": appointment.is_telehealth,
        "source": appointment.get_source_display(),
        "late_cancel": appointment.is_late_cancel,
        "cancellation_reason": appointment.cancellation_reason,
        "overbooked": appointment.overbooked,
        "warning": appointment.authorization_warning,
        "units": _units_label(appointment),
        "notes": appointment.notes,
        "admin_url": reverse("admin:scheduling_appointment_change", args=[appointment.pk]),
        "actions": actions,
    }


@dataclass
class Filters:
    day: date
    view: str  # "day" or "week"
    location: Location | None
    specialty: Specialty | None
    cancelled: bool

    def query(self, **changes) -> str:
        from urllib.parse import urlencode

        values = {
            "date": self.day.isoformat(),
            "view": self.view,
            "location": self.location.pk if self.location else "",
            "specialty": self.specialty.slug if self.specialty else "",
            "cancelled": "1" if self.cancelled else "",
        }
        values.update(changes)
        return "?" + urlencode({k: v for k, v in values.items() if v not in ("", None)})


def _filters(request: HttpRequest, tz: ZoneInfo) -> Filters:
    params = request.GET
    today = timezone.now().astimezone(tz).date()
    try:
        day = date.fromisoformat(params.get("date", ""))
    except ValueError:
        day = today
        if params.get("move", "").isdigit():  # the admin's Move: the board of the visit's day
            start = (
                Appointment.objects.filter(pk=int(params["move"]))
                .values_list("start", flat=True)
                .first()
            )
            day = start.astimezone(tz).date() if start else today
    if abs((day - today).days) > MAX_DAYS_AWAY:
        day = today
    location = specialty = None
    if params.get("location", "").isdigit():
        location = Location.objects.filter(pk=int(params["location"]), is_active=True).first()
    if params.get("specialty"):
        specialty = Specialty.objects.filter(slug=params["specialty"], is_active=True).first()
    view = "week" if params.get("view") == "week" else "day"
    return Filters(day, view, location, specialty, params.get("cancelled") == "1")


def _practitioners(request: HttpRequest, filters: Filters):
    qs = (
        Practitioner.objects.filter(is_active=True)
        .defer("search_document")
        .prefetch_related("specialties")
    )
    qs = rows_in_scope(
        qs, user=request.user, permission="scheduling.view_appointment", practitioner=""
    )
    if filters.location is not None:
        qs = qs.filter(locations=filters.location)
    if filters.specialty is not None:
        qs = qs.filter(specialties=filters.specialty)
    return qs.distinct().order_by("display_name", "id")


def _closures(first: date, last: date) -> tuple[Closed, ...]:
    """The closures of the days shown (a day either side: practitioners in other zones)."""
    return closures_between(first - timedelta(days=1), last + timedelta(days=1))


def _closure_notes(closures: tuple[Closed, ...], days: list[date]) -> list[str]:
    """What the board says above the grid: each closure of the days shown, where and when
    (a closed day has no working hours and no free slots on the grid)."""
    names = {}
    if any(closure.location_id for closure in closures):
        names = dict(Location.objects.filter(closures__isnull=False).values_list("pk", "name"))
    notes = []
    for closure in closures:
        if not any(closure.start_date <= day <= closure.end_date for day in days):
            continue
        where = names.get(closure.location_id, "") if closure.location_id else "Clinic"
        first = formats.date_format(closure.start_date, style="day")
        span = (
            first
            if closure.start_date == closure.end_date
            else f"{first} – {formats.date_format(closure.end_date, style='day')}"
        )
        notes.append(f"{where} closed {span}: {closure.name}")
    return notes


def _audit_shown(request: HttpRequest, columns) -> None:
    """Every visit on the board shows its patient's name: each is a read of that patient's
    data (recorded again on each live refresh, which re-reads the grid)."""
    for column in columns:
        for appointment in column.appointments:
            audit.record(request, audit.READ, appointment, label="schedule board")


def _holds(start: datetime, end: datetime, user) -> dict[int, list]:
    """Slots held for waitlist patients over [start, end), by practitioner: drawn on the grid
    and never offered as free (the database refuses another booking there until the hold
    ends). Only for those who may read the waitlist's offers."""
    if not user.has_perm("waitlist.view_waitlistoffer"):
        return {}
    holds: dict[int, list] = {}
    for offer in waitlist_selectors.offers_held_between(start, end):
        holds.setdefault(offer.practitioner_id, []).append(offer)
    return holds


def _day_grid(request, filters: Filters, tz: ZoneInfo, now: datetime) -> dict:
    day = filters.day
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    closures = _closures(day, day)
    columns = selectors.schedule_board(
        start=start,
        end=end,
        practitioners=_practitioners(request, filters),
        location_id=filters.location.pk if filters.location else None,
        include_cancelled=filters.cancelled,
        closures=closures,
    )
    _audit_shown(request, columns)
    holds = _holds(start, end, request.user)
    clinic_settings = ClinicSettings.load()
    step = clinic_settings.slot_step_minutes
    # Staff book from now on (walk-ins), or from the clinic's staff notice on.
    bookable_from = now + timedelta(minutes=clinic_settings.staff_min_notice_minutes)
    first, last = DEFAULT_HOURS[0] * 60, DEFAULT_HOURS[1] * 60
    for column in columns:
        moments = [(lo, hi) for lo, hi, _ in column.working]
        moments += [(a.start, a.end) for a in column.appointments]
        for lo, hi in moments:
            first = min(first, _wall_minutes(lo, day, tz))
            last = max(last, _wall_minutes(hi, day, tz))
    first = max(0, first - first % 60)
    last = min(24 * 60, last + (-last) % 60)

    def place(lo: datetime, hi: datetime, **data) -> Placed:
        top = max(_wall_minutes(lo, day, tz), first) - first
        bottom = min(_wall_minutes(hi, day, tz), last) - first
        return Placed(top=top, length=max(bottom - top, 1), data=data)

    data = {"appointments": {}, "practitioners": {}}
    out = []
    for column in columns:
        practitioner = column.practitioner
        data["practitioners"][practitioner.pk] = {
            "name": practitioner.display_name,
            "telehealth": practitioner.offers_telehealth,
            "types": [
                {"id": t.pk, "name": t.name, "minutes": t.duration_minutes, "mode": t.mode}
                for t in practitioner.appointment_types.all()
            ],
        }
        working = [
            place(lo, hi, label=f"{_clock(lo, tz)}–{_clock(hi, tz)}", location=location)
            for lo, hi, location in column.working
        ]
        time_off = [
            place(off.start, off.end, label=off.reason or "Time off") for off in column.time_off
        ]
        held = [
            place(
                offer.start,
                offer.end,
                id=offer.pk,
                label=f"Held for the waitlist until {_clock(offer.expires_at, tz)}",
                patient=str(offer.patient),
            )
            for offer in holds.get(practitioner.pk, ())
        ]
        appointments = []
        for appointment in column.appointments:
            info = _appointment_info(appointment, practitioner, tz, request.user, now)
            data["appointments"][appointment.pk] = info
            appointments.append(place(appointment.start, appointment.end, **info))
        _assign_lanes(appointments)
        busy = [
            (a.blocked.lower, a.blocked.upper)
            for a in column.appointments
            if a.status in ACTIVE_STATUSES and not a.overbooked
        ] + [(off.start, off.end) for off in column.time_off]
        busy += [(o.blocked.lower, o.blocked.upper) for o in holds.get(practitioner.pk, ())]
        free = []
        for lo, hi, location in column.working:
            moment = lo
            while moment + timedelta(minutes=step) <= hi:
                upper = moment + timedelta(minutes=step)
                if (
                    moment > now
                    and moment >= bookable_from
                    and not any(b_lo < upper and moment < b_hi for b_lo, b_hi in busy)
                ):
                    free.append(
                        place(
                            moment,
                            upper,
                            start=moment.isoformat(),
                            label=_clock(moment, tz),
                            on_hour=moment.astimezone(tz).minute == 0,
                            location=location or "",
                        )
                    )
                moment = upper
        out.append(
            {
                "practitioner": practitioner,
                "specialties": ", ".join(s.name for s in practitioner.specialties.all()),
                "working": working,
                "time_off": time_off,
                "held": held,
                "appointments": appointments,
                "free": free,
                "count": sum(1 for a in column.appointments if a.status in ACTIVE_STATUSES),
            }
        )
    hours = [
        {"top": minute - first, "label": _hour_label(day, minute // 60, tz)}
        for minute in range(first, last, 60)
    ]
    now_top = None
    if now.astimezone(tz).date() == day:
        now_minutes = _wall_minutes(now, day, tz)
        if first <= now_minutes <= last:
            now_top = now_minutes - first
    return {
        "closures": _closure_notes(closures, [day]),
        "columns": out,
        "hours": hours,
        "minutes": last - first,
        "first": first,
        "step": step,
        "now_top": now_top,
        "walk_in": (
            walk_in_start(now, tz, clinic_settings).isoformat()
            if day == now.astimezone(tz).date()
            else None
        ),
        "data": data,
    }


def walk_in_start(now: datetime, tz: ZoneInfo, clinic_settings: ClinicSettings) -> datetime:
    """When a walk-in booked now starts: the first step of the clinic's grid (on its wall
    clock) from now plus the staff notice (in the clinic's time zone)."""
    step = clinic_settings.slot_step_minutes
    earliest = (now + timedelta(minutes=clinic_settings.staff_min_notice_minutes)).astimezone(tz)
    since_midnight = (
        earliest.hour * 60 + earliest.minute + (1 if earliest.second or earliest.microsecond else 0)
    )
    minutes = -(-since_midnight // step) * step
    day = earliest.date() + timedelta(days=minutes // 1440)
    minutes %= 1440
    # The wall clock's time (a DST gap is read as the offset before it, as the grid does).
    start = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=tz)
    return start.astimezone(UTC).astimezone(tz)


def _week_grid(request, filters: Filters, tz: ZoneInfo, now: datetime) -> dict:
    monday = filters.day - timedelta(days=filters.day.weekday())
    days = [monday + timedelta(days=n) for n in range(7)]
    start = datetime.combine(monday, time(0), tzinfo=tz)
    end = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=tz)
    closures = _closures(monday, days[-1])
    columns = selectors.schedule_board(
        start=start,
        end=end,
        practitioners=_practitioners(request, filters),
        location_id=filters.location.pk if filters.location else None,
        include_cancelled=filters.cancelled,
        closures=closures,
    )
    _audit_shown(request, columns)
    data = {"appointments": {}, "practitioners": {}}
    rows = []
    for column in columns:
        practitioner = column.practitioner
        cells = {day: {"day": day, "hours": [], "off": [], "appointments": []} for day in days}
        for lo, hi, _ in column.working:
            local_day = lo.astimezone(tz).date()
            if local_day in cells:
                cells[local_day]["hours"].append(f"{_clock(lo, tz)}–{_clock(hi, tz)}")
        for off in column.time_off:
            for day in days:
                day_start = datetime.combine(day, time(0), tzinfo=tz)
                day_end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
                if off.start < day_end and off.end > day_start:
                    lo, hi = max(off.start, day_start), min(off.end, day_end)
                    span = (
                        "all day"
                        if (lo, hi) == (day_start, day_end)
                        else (f"{_clock(lo, tz)}–{_clock(hi, tz)}")
                    )
                    cells[day]["off"].append(f"{off.reason or 'Time off'} · {span}")
        for appointment in column.appointments:
            info = _appointment_info(appointment, practitioner, tz, request.user, now)
            data["appointments"][appointment.pk] = info
            local_day = appointment.start.astimezone(tz).date()
            if local_day in cells:
                cells[local_day]["appointments"].append(
                    {**info, "clock": _clock(appointment.start, tz)}
                )
        rows.append(
            {
                "practitioner": practitioner,
                "specialties": ", ".join(s.name for s in practitioner.specialties.all()),
                "cells": [cells[day] for day in days],
                "count": sum(1 for a in column.appointments if a.status in ACTIVE_STATUSES),
            }
        )
    today = now.astimezone(tz).date()
    return {
        "closures": _closure_notes(closures, days),
        "days": [
            {"date": day, "today": day == today, "query": filters.query(date=day, view="day")}
            for day in days
        ],
        "rows": rows,
        "data": data,
    }


def _can(user) -> dict:
    return {
        "book": _may(user, "book"),
        "overbook": _may(user, "book") and services.overbook_allowed(user),
        **{name.replace("-", "_"): user.has_perm(a.permission) for name, a in ACTIONS.items()},
    }


@require_GET
def board_view(request: HttpRequest) -> HttpResponse:
    """The board page; `?fragment=1` renders only the grid (the page refetches it live)."""
    if not _may(request.user, "view"):
        raise PermissionDenied
    tz = ZoneInfo(request.tenant.timezone)
    now = timezone.now()
    filters = _filters(request, tz)
    grid = (_week_grid if filters.view == "week" else _day_grid)(request, filters, tz, now)
    step = timedelta(days=7 if filters.view == "week" else 1)
    if filters.view == "week":
        monday = filters.day - timedelta(days=filters.day.weekday())
        sunday = monday + timedelta(days=6)
        heading = (
            f"Week of {formats.date_format(monday, style='day')} – "
            f"{formats.date_format(sunday, style='long')}"
        )
    else:
        heading = formats.date_format(filters.day, style="long")
    can = _can(request.user)
    grid["data"]["can"] = can
    context = {
        **admin.site.each_context(request),
        "title": "Schedule board",
        "subtitle": heading,
        "is_nav_sidebar_enabled": False,
        "heading": heading,
        "timezone_name": tz.key,
        "filters": filters,
        "grid": grid,
        "can": can,
        "own_only": selectors.sees_own_schedule_only(request.user),
        "today_query": filters.query(date=timezone.now().astimezone(tz).date().isoformat()),
        "prev_query": filters.query(date=(filters.day - step).isoformat()),
        "next_query": filters.query(date=(filters.day + step).isoformat()),
        "day_query": filters.query(view="day"),
        "week_query": filters.query(view="week"),
        "locations": Location.objects.filter(is_active=True).order_by("name"),
        "specialties": Specialty.objects.filter(is_active=True).order_by("name"),
        "websocket_url": websocket_url(request, "/ws/schedule/"),
        "statuses": Status.choices,
    }
    template = "backoffice/board_grid.html" if request.GET.get("fragment") else None
    return render(request, template or "backoffice/board.html", context)


class BookForm(forms.Form):
    patient = forms.ModelChoiceField(Patient.objects.all())
    practitioner = forms.ModelChoiceField(Practitioner.objects.all())
    appointment_type = forms.ModelChoiceField(AppointmentType.objects.all())
    start = forms.DateTimeField()
    location = forms.ModelChoiceField(Location.objects.all(), required=False)
    telehealth = forms.NullBooleanField(required=False)
    notes = forms.CharField(required=False, max_length=2000)
    overbook = forms.BooleanField(required=False)
    # The board's Walk-in button: the visit starts at the grid's next step from the moment it is
    # booked, never before (the page's start may have passed while the desk found the patient).
    walk_in = forms.BooleanField(required=False)

    def clean_start(self) -> datetime:
        start = self.cleaned_data["start"]
        if abs((start - timezone.now()).days) > MAX_DAYS_AWAY:
            raise forms.ValidationError("Give a time within ten years of today.")
        return start


@require_POST
@json_errors
def board_book(request: HttpRequest) -> HttpResponse:
    """Book into a slot through `appointment_book` (source `staff`): 201 with the appointment
    as the API shows it, or the API's problem (409 with alternatives, 422 naming the rule). A
    walk-in starts no earlier than the grid's next step from now."""
    if not _may(request.user, "book"):
        raise PermissionDenied
    form = BookForm(request.POST)
    if not form.is_valid():
        return _invalid(form)
    v = form.cleaned_data
    start = v["start"]
    if v["walk_in"]:
        now_step = walk_in_start(
            timezone.now(), ZoneInfo(request.tenant.timezone), ClinicSettings.load()
        )
        start = max(start, now_step)
    if not row_in_scope(
        user=request.user,
        permission="scheduling.book_appointment",
        practitioner=v["practitioner"],
        patient=v["patient"],
    ):
        raise PermissionDenied
    appointment = services.appointment_book(
        patient=v["patient"],
        practitioner=v["practitioner"],
        appointment_type=v["appointment_type"],
        start=start,
        booked_by=request.user,
        source=Appointment.Source.STAFF,
        location=v["location"],
        telehealth=v["telehealth"],
        notes=v["notes"],
        overbook=v["overbook"],
    )
    audit.record(request, audit.CREATE, appointment)
    return JsonResponse({"appointment": _appointment_json(appointment)}, status=201)


def _appointment_json(appointment: Appointment) -> dict:
    """What the board's page needs of a visit it booked or changed (the grid itself is
    re-read from the server): the page is not an API client, so no API serializer."""
    return {
        "id": appointment.pk,
        "status": appointment.status,
        "start": appointment.start.isoformat(),
        "end": appointment.end.isoformat(),
        "practitioner": {
            "id": appointment.practitioner_id,
            "display_name": appointment.practitioner.display_name,
        },
        "patient": {"id": appointment.patient_id, "name": str(appointment.patient)},
        "appointment_type": {
            "id": appointment.appointment_type_id,
            "name": appointment.appointment_type.name,
        },
        "location": appointment.location_id,
        "overbooked": appointment.overbooked,
    }


class MoveForm(forms.Form):
    start = forms.DateTimeField()
    practitioner = forms.ModelChoiceField(Practitioner.objects.all(), required=False)
    overbook = forms.BooleanField(required=False)

    def clean_start(self) -> datetime:
        start = self.cleaned_data["start"]
        if timezone.is_naive(start) or abs((start - timezone.now()).days) > MAX_DAYS_AWAY:
            raise forms.ValidationError("Give a time within ten years of today.")
        return start


def _invalid(form: forms.Form) -> JsonResponse:
    errors = {name: [str(m) for m in messages] for name, messages in form.errors.items()}
    detail = "; ".join(f"{name}: {' '.join(m)}" for name, m in errors.items())
    return _problem(400, "validation-error", f"Invalid input. {detail}", errors=errors)


@require_POST
@json_errors
def board_move(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """Move a visit to `start`, and to `practitioner` if given (a drag to another column, or
    the Move dialog), through `appointment_reschedule`, the API's reschedule: the same rules,
    units and 409 with alternatives. The visit and the target column must both be in the
    user's scope."""
    permission = states.TRANSITIONS[states.RESCHEDULE].permission
    if not request.user.has_perm(permission):
        raise PermissionDenied
    visible = rows_in_scope(
        Appointment.objects.all(),
        user=request.user,
        permission=permission,
        practitioner="practitioner",
    )
    appointment = visible.filter(pk=appointment_id).first()
    if appointment is None:
        raise Http404
    form = MoveForm(request.POST)
    # A start without an offset (the Move dialog's date and time) is the clinic's wall clock.
    with timezone.override(ZoneInfo(request.tenant.timezone)):
        valid = form.is_valid()
    if not valid:
        return _invalid(form)
    v = form.cleaned_data
    target = v["practitioner"]
    if target is not None and not row_in_scope(
        user=request.user, permission=permission, practitioner=target
    ):
        raise PermissionDenied
    before = changes_tracked(appointment)
    appointment = services.appointment_reschedule(
        appointment=appointment,
        start=v["start"],
        practitioner=target,
        by=request.user,
        overbook=v["overbook"],
    )
    audit.record(request, audit.UPDATE, appointment, fields=changed_fields(before, appointment))
    return JsonResponse({"appointment": _appointment_json(appointment)})


@require_POST
@json_errors
def board_action(request: HttpRequest, appointment_id: int, action: str) -> HttpResponse:
    """Check in, complete, mark a no-show or cancel (with `reason`) through the services."""
    spec = ACTIONS.get(action)
    if spec is None:
        raise Http404
    if not request.user.has_perm(spec.permission):
        raise PermissionDenied
    visible = rows_in_scope(
        Appointment.objects.all(),
        user=request.user,
        permission=spec.permission,
        practitioner="practitioner",
    )
    appointment = visible.filter(pk=appointment_id).first()
    if appointment is None:
        raise Http404
    before = changes_tracked(appointment)
    appointment = _run_action(action, appointment, request)
    audit.record(request, audit.UPDATE, appointment, fields=changed_fields(before, appointment))
    return JsonResponse({"appointment": _appointment_json(appointment)})


@require_GET
@json_errors
def board_patients(request: HttpRequest) -> HttpResponse:
    """Patients to book for: name, email or phone words; date of birth to tell twins apart."""
    if not request.user.has_perm("practice.view_patient"):
        raise PermissionDenied
    qs = Patient.objects.filter(is_active=True)
    qs = rows_in_scope(qs, user=request.user, permission="practice.view_patient", patient="")
    terms = request.GET.get("q", "").split()[:4]
    if not terms:
        return JsonResponse({"results": []})
    for term in terms:
        qs = qs.filter(
            Q(first_name__icontains=term)
            | Q(last_name__icontains=term)
            | Q(email__icontains=term)
            | Q(phone__icontains=term)
        )
    found = list(qs.order_by("last_name", "first_name", "id")[:10])
    for patient in found:
        audit.record(request, audit.READ, patient, label="board patient search")
    results = [{"id": p.pk, "name": str(p), "dob": p.date_of_birth.isoformat()} for p in found]
    return JsonResponse({"results": results})


def board_urls() -> list:
    """Mounted at /admin/scheduling/board/ (clinic/urls_tenants.py); every view requires a
    signed-in staff user (the admin's own check) and then its permission (403)."""
    wrap = admin.site.admin_view
    return [
        path("", wrap(board_view), name="scheduling_board"),
        path("book/", wrap(board_book), name="scheduling_board_book"),
        path("patients/", wrap(board_patients), name="scheduling_board_patients"),
        path("plan/", wrap(plan_view), name="scheduling_board_plan"),
        path(
            "appointments/<int:appointment_id>/move/",
            wrap(board_move),
            name="scheduling_board_move",
        ),
        path(
            "appointments/<int:appointment_id>/<slug:action>/",
            wrap(board_action),
            name="scheduling_board_action",
        ),
    ]

"""The availability endpoint (`GET /api/v1/availability/`): free slots per practitioner in the
requested zone, for anyone. An answer is shared through Redis (`AnswerCache`) until the clinic's
data changes, for its minute at most, and memoised in each process by the complete inputs it was
computed from (`AnswerMemo`)."""

import threading
import time
import zlib
from collections import OrderedDict
from datetime import date, datetime, timedelta

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.views import APIView

from clinic.api import AnswerCache, JSONRenderer, calendar_scopes
from clinic.inputs import schedule_date_error, zone_error
from clinic.tenancy import request_tenant, tenant_connection
from practice.models import ClinicSettings

from ..availability import availability_query_of_type
from . import serializers as s


class AvailabilityView(APIView):
    """Free slots per practitioner, in the requested zone."""

    public_actions = ("get", "head", "options")

    @extend_schema(
        parameters=[s.AvailabilityQuerySerializer],
        responses=s.AvailabilitySerializer,
    )
    def get(self, request: Request) -> HttpResponse:
        default_tz = request_tenant(request).timezone
        # Answers move on with the clock a whole minute at a time (AvailabilityQuery): shared
        # for a minute at most unless the schedule changes first. Each answer's minute begins
        # at its own second (from its parameters): with the clock's, every answer expired in
        # the same second and every request then in flight rebuilt one.
        params = (default_tz, sorted(request.query_params.lists()))
        offset = zlib.crc32(repr(params).encode()) % 60
        period, into = divmod(time.time() + offset, 60)

        def compute() -> tuple[bytes, float]:
            # Validated on a miss only: a shared answer is stored only for parameters that
            # passed, under the raw parameters, for a minute at most.
            _check_bounds(request.query_params)
            query = s.AvailabilityQuerySerializer(
                data=request.query_params, context={"default_tz": default_tz}
            )
            query.is_valid(raise_exception=True)
            return availability_answer(query.validated_data), 60 - into

        scopes = _calendar_scopes(request.query_params)
        if scopes is None:  # unreadable: the serializer answers (400), nothing is shared
            return HttpResponse(compute()[0], content_type="application/json")
        return SHARED_AVAILABILITY_ANSWERS.answer((*params, int(period)), compute, scopes)


def _calendar_scopes(params) -> list[str] | None:
    """The calendar versions an answer to these raw parameters depends on besides the
    clinic's (`clinic.api.calendar_scopes`): the named practitioner's weeks, or the clinic's
    weeks; read as the serializer reads them. None when they cannot be read or span more
    than the serializer allows."""
    field = s.DateOrDateTimeField()
    try:
        first, last = (field.to_internal_value(params.get(name)) for name in ("start", "end"))
        practitioner = int(params["practitioner"]) if params.get("practitioner") else None
    except (ValidationError, ValueError):
        return None
    first, last = (day.date() if isinstance(day, datetime) else day for day in (first, last))
    if schedule_date_error(first) or schedule_date_error(last):
        return None  # far from today (year 9999 would overflow)
    if not timedelta(0) <= last - first <= timedelta(days=s.MAX_WINDOW_DAYS):
        return None
    practitioners = [practitioner] if practitioner is not None else None
    return calendar_scopes(first_day=first, last_day=last, practitioners=practitioners)


def _check_bounds(params) -> None:
    """Refuse, naming the parameter, a zone not in the zone database and a day far from today,
    before the serializer: it hands any string to ZoneInfo (a file path) and adds a day to the
    end date (year 9999 overflows)."""
    if "tz" in params and (message := zone_error(params["tz"])):
        raise ValidationError({"tz": [message]})
    for field in ("start", "end"):
        try:
            day = date.fromisoformat(params.get(field, "")[:10])
        except ValueError:
            continue  # not a date: the serializer says so
        if message := schedule_date_error(day):
            raise ValidationError({field: [message]})


def availability_answer(data: dict) -> bytes:
    """The rendered answer for validated `AvailabilityQuerySerializer` data: one round trip
    (`availability_query_of_type`: the type and the inputs), then computing and rendering
    unless this process has the answer for the same inputs."""
    appointment_type, query = availability_query_of_type(
        data["appointment_type"],
        start=data["start"],
        end=data["end"],
        practitioner_ids=[data["practitioner"]] if data.get("practitioner") else None,
        specialty=data.get("specialty"),
        location_id=data.get("location"),
        telehealth=data.get("telehealth"),
    )
    if appointment_type is None:
        raise ValidationError({"appointment_type": ["No active appointment type with this id."]})
    step = query.step if query else timedelta(minutes=ClinicSettings.load().slot_step_minutes)
    key: tuple = (tenant_connection.schema_name, data["zone"].key, data["start"], data["end"], step)
    key += query.key if query else (appointment_type.pk,)
    body = AVAILABILITY_ANSWERS.get(key)
    if body is None:
        body = JSONRenderer().render(
            availability_body(
                appointment_type=appointment_type,
                zone=data["zone"],
                start=data["start"],
                end=data["end"],
                slot_step_minutes=int(step.total_seconds()) // 60,
                results=query.compute() if query else [],
            )
        )
        AVAILABILITY_ANSWERS.put(key, body)
    return body


class AnswerMemo:
    """Rendered answers by the complete inputs they were computed from, in this process,
    least recently used first out, within a byte budget.

    Nothing here can go stale: the key holds everything the answer depends on as just read
    from the database (working hours, time off and busy ranges of each practitioner, the
    window in whole minutes, the type, the step, the zone), so a booking, a cancellation or
    a change of hours changes the key. What it saves is the computing and the rendering
    (~6,000 slots for 20 practitioners over 14 days), not the two queries: on a miss of the
    shared `AnswerCache` after a change elsewhere in the clinic (its version is clinic-wide),
    the inputs of this answer are often the same."""

    def __init__(self, *, max_bytes: int, max_entries: int):
        self.max_bytes, self.max_entries = max_bytes, max_entries
        self._entries: OrderedDict[tuple, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple) -> bytes | None:
        with self._lock:
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
            return body

    def put(self, key: tuple, body: bytes) -> None:
        if len(body) > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            self._bytes += len(body) - (len(old) if old is not None else 0)
            self._entries[key] = body
            while self._bytes > self.max_bytes or len(self._entries) > self.max_entries:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


AVAILABILITY_ANSWERS = AnswerMemo(max_bytes=16 * 1024 * 1024, max_entries=256)
SHARED_AVAILABILITY_ANSWERS = AnswerCache("availability")


def availability_body(
    *, appointment_type, zone, start, end, slot_step_minutes: int, results
) -> dict:
    """`AvailabilitySerializer`'s output, built directly: an answer holds thousands of slots
    (20 practitioners over 14 days: ~6,000), and DRF's nested serializers spent ~15 µs on
    each. Same keys, same ISO-8601 strings in the requested zone (a test compares the two)."""
    formatted: dict[datetime, str] = {}  # slots of many practitioners share their times

    def iso(moment: datetime) -> str:
        text = formatted.get(moment)
        if text is None:
            text = moment.astimezone(zone).isoformat()
            if text.endswith("+00:00"):
                text = text[:-6] + "Z"
            formatted[moment] = text
        return text

    return {
        "appointment_type": appointment_type.pk,
        "timezone": zone.key,
        "start": iso(start),
        "end": iso(end),
        "slot_step_minutes": slot_step_minutes,
        "practitioners": [
            {
                "id": result.practitioner.pk,
                "display_name": result.practitioner.display_name,
                "timezone": result.practitioner.timezone,
                "slots": [
                    {"start": iso(slot.start), "end": iso(slot.end), "location": slot.location_id}
                    for slot in result.slots
                ],
            }
            for result in results
        ],
    }

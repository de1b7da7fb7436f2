"""The smart-booking request: what a patient needs, and the rules it must meet before a job is
written. One definition for both ways in: the API's serializer parses the JSON into a
`SmartRequest` and checks it here; the patient pages' form does the same through
`smart_request_parse`. The job stores `SmartRequest.to_job_request()`.
"""

import dataclasses
import zoneinfo
from collections.abc import Mapping
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from clinic.inputs import schedule_date_error, zone_error
from practice.models import Location, Practitioner, Specialty
from practice.validators import validate_language

from ..errors import SmartRequestInvalidError
from ..models import AppointmentType

# The times of day a request may prefer, and the local hours each covers ([start, end)).
TIMES_OF_DAY = {"morning": (6, 12), "afternoon": (12, 17), "evening": (17, 22)}
MAX_SEARCH_DAYS = 120
MAX_SESSIONS_PER_WEEK = 7
MAX_WEEKS = 26

# The rows a request may name: active ones only.
TYPES = AppointmentType.objects.filter(is_active=True)
PRACTITIONERS = Practitioner.objects.filter(is_active=True)
LOCATIONS = Location.objects.filter(is_active=True)


@dataclasses.dataclass(frozen=True)
class Recurring:
    sessions_per_week: int
    weeks: int


@dataclasses.dataclass(frozen=True)
class SmartRequest:
    """A request with its rows read. Names exactly one of `specialty`, `practitioner` or
    `practitioners`; the dates are whole days in `tz`."""

    appointment_type: AppointmentType
    earliest_date: date
    latest_date: date
    tz: str
    specialty: str | None = None
    practitioner: Practitioner | None = None
    practitioners: tuple[Practitioner, ...] = ()
    preferred_weekdays: tuple[int, ...] = ()
    preferred_times: tuple[str, ...] = ()
    location: Location | None = None
    telehealth: bool | None = None
    language: str | None = None
    recurring: Recurring | None = None

    def to_job_request(self) -> dict:
        """The JSON the job keeps (and `scoring.Need.from_request` reads)."""
        return {
            "specialty": self.specialty,
            "practitioner": self.practitioner.pk if self.practitioner else None,
            "practitioners": [p.pk for p in self.practitioners] or None,
            "appointment_type": self.appointment_type.pk,
            "earliest_date": self.earliest_date.isoformat(),
            "latest_date": self.latest_date.isoformat(),
            "preferred_weekdays": list(self.preferred_weekdays),
            "preferred_times": list(self.preferred_times),
            "location": self.location.pk if self.location else None,
            "telehealth": self.telehealth,
            "language": self.language,
            "tz": self.tz,
            "recurring": dataclasses.asdict(self.recurring) if self.recurring else None,
        }


def _invalid(field: str, message: str) -> SmartRequestInvalidError:
    return SmartRequestInvalidError({field: [message]})


def check_zone(value: str) -> None:
    """`tz` must be a name in the zone database (any other string reaches the file system)."""
    if message := zone_error(value):
        raise _invalid("tz", message)


def check_language(value: str) -> None:
    """`language` must be an ISO 639-1 code."""
    try:
        validate_language(value)
    except ValidationError as error:
        raise _invalid("language", str(error.messages[0])) from error


def check_smart_request(request: SmartRequest) -> None:
    """The rules across fields, the first broken one raised (SmartRequestInvalidError naming
    its field): one way to name the practitioners, a window that is not past, in order and at
    most `MAX_SEARCH_DAYS` long, a type the named practitioners (or the specialty's) offer, in
    the mode asked for, and a window long enough for the recurring weeks."""
    chosen = [k for k in ("specialty", "practitioner", "practitioners") if getattr(request, k)]
    if len(chosen) != 1:
        raise _invalid("specialty", "Give exactly one of specialty, practitioner or practitioners.")
    if request.specialty and not Specialty.objects.filter(slug=request.specialty).exists():
        raise _invalid("specialty", "Unknown specialty.")
    today = timezone.now().astimezone(zoneinfo.ZoneInfo(request.tz)).date()
    for field in ("earliest_date", "latest_date"):
        if message := schedule_date_error(getattr(request, field), today=today):
            raise _invalid(field, message)
    if request.latest_date < today:
        raise _invalid("latest_date", "The search window is in the past.")
    if request.earliest_date > request.latest_date:
        raise _invalid("latest_date", "The latest date must not be before the earliest.")
    if (request.latest_date - request.earliest_date).days > MAX_SEARCH_DAYS:
        raise _invalid("latest_date", f"Search at most {MAX_SEARCH_DAYS} days at once.")
    t = request.appointment_type
    offered = set(t.practitioners.filter(is_active=True).values_list("pk", flat=True))
    wanted = (
        [request.practitioner.pk] if request.practitioner
        else [p.pk for p in request.practitioners]
    )  # fmt: skip
    if wanted and not offered & set(wanted):
        raise _invalid("appointment_type", f"None of these practitioners offers {t.name}.")
    if (
        request.specialty
        and not t.practitioners.filter(specialties__slug=request.specialty, is_active=True).exists()
    ):
        raise _invalid("appointment_type", f"No {request.specialty} practitioner offers {t.name}.")
    if t.mode == AppointmentType.Mode.IN_PERSON and request.telehealth:
        raise _invalid("telehealth", f"{t.name} is in person only.")
    recurring = request.recurring
    if recurring and (request.latest_date - request.earliest_date).days + 1 < 7 * recurring.weeks:
        raise _invalid("recurring", "The search window is shorter than the weeks asked for.")


def smart_request_parse(values: Mapping[str, Any], *, default_tz: str) -> SmartRequest:
    """A checked request from values already of the right types, in the API's shape (ids, ISO
    dates, lists: what the patient pages' form gives). Raises SmartRequestInvalidError: first
    every unknown row, bad zone or language at once, then the first rule broken."""
    errors: dict[str, list[str]] = {}

    def row(queryset, field: str, pk):
        if pk is None:
            return None
        found = queryset.filter(pk=pk).first()
        if found is None:
            errors.setdefault(field, []).append(f'Invalid pk "{pk}" - object does not exist.')
        return found

    appointment_type = row(TYPES, "appointment_type", values["appointment_type"])
    practitioner = row(PRACTITIONERS, "practitioner", values.get("practitioner"))
    practitioners = [
        row(PRACTITIONERS, "practitioners", pk) for pk in values.get("practitioners") or ()
    ]
    location = row(LOCATIONS, "location", values.get("location"))
    for field, check in (("tz", check_zone), ("language", check_language)):
        if values.get(field) is not None:
            try:
                check(values[field])
            except SmartRequestInvalidError as error:
                errors.update(error.errors)
    if errors:
        raise SmartRequestInvalidError(errors)
    recurring = values.get("recurring")
    request = SmartRequest(
        appointment_type=appointment_type,
        earliest_date=date.fromisoformat(values["earliest_date"]),
        latest_date=date.fromisoformat(values["latest_date"]),
        tz=values.get("tz") or default_tz,
        specialty=values.get("specialty"),
        practitioner=practitioner,
        practitioners=tuple(practitioners),
        preferred_weekdays=tuple(values.get("preferred_weekdays") or ()),
        preferred_times=tuple(values.get("preferred_times") or ()),
        location=location,
        telehealth=values.get("telehealth"),
        language=values.get("language"),
        recurring=Recurring(**recurring) if recurring else None,
    )
    check_smart_request(request)
    return request

"""Recurring visits: an RFC 5545 rule expanded on the wall clock of a zone, each occurrence
booked through `services.appointment_book` in one transaction, all or nothing (or, with
`partial`, the free ones), and the series' future visits cancelled together."""

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from django.db import transaction
from django.utils import timezone

from clinic.errors import ApplicationError
from practice.models import Location, Patient, Practitioner

from .errors import BookingRefusedError, SeriesConflictError
from .models import Appointment, AppointmentSeries, AppointmentType
from .services import appointment_book, appointment_cancel

MAX_SERIES_OCCURRENCES = 200
Status = Appointment.Status


def _refuse(detail: str, code: str) -> BookingRefusedError:
    return BookingRefusedError(detail, code=code, field="rrule")


def series_occurrences(*, rrule: str, first_start: datetime, tz: ZoneInfo) -> list[datetime]:
    """Expand an RFC 5545 rule from `first_start` in `tz` (wall-clock times kept across DST).
    Raises BookingRefusedError for a rule that is invalid, unbounded or too long."""
    rule_text = rrule.strip()
    if rule_text.upper().startswith("RRULE:"):
        rule_text = rule_text[6:]
    if "COUNT=" not in rule_text.upper() and "UNTIL=" not in rule_text.upper():
        raise _refuse("The rule needs COUNT or UNTIL.", "rrule-unbounded")
    local_start = first_start.astimezone(tz)
    try:
        rule = rrulestr(rule_text, dtstart=local_start.replace(tzinfo=None))
        occurrences = []
        for moment in rule:
            occurrences.append(moment.replace(tzinfo=tz))
            if len(occurrences) > MAX_SERIES_OCCURRENCES:
                raise _refuse(
                    f"A series has at most {MAX_SERIES_OCCURRENCES} occurrences.", "rrule-too-long"
                )
    except (ValueError, TypeError) as error:
        raise _refuse(f"Invalid recurrence rule: {error}", "rrule-invalid") from error
    return occurrences


@dataclass
class SeriesResult:
    series: AppointmentSeries | None
    booked: list[Appointment]
    skipped: list[dict]


@transaction.atomic
def appointment_series_book(
    *,
    patient: Patient,
    practitioner: Practitioner,
    appointment_type: AppointmentType,
    first_start: datetime,
    rrule: str,
    booked_by=None,
    source: str = Appointment.Source.STAFF,
    timezone_name: str | None = None,
    location: Location | None = None,
    telehealth: bool | None = None,
    partial: bool = False,
    now: datetime | None = None,
) -> SeriesResult:
    """Book every occurrence of a recurring rule, all or nothing (default): one refused
    occurrence refuses the series (409 listing each with alternatives) and nothing is written.
    With `partial`, the free occurrences are booked and the others reported."""
    tz = ZoneInfo(timezone_name or practitioner.timezone)
    occurrences = series_occurrences(rrule=rrule, first_start=first_start, tz=tz)
    series = AppointmentSeries.objects.create(
        patient=patient,
        practitioner=practitioner,
        appointment_type=appointment_type,
        rrule=rrule,
        first_start=first_start,
        timezone=tz.key,
        created_by=booked_by,
    )
    booked, skipped = [], []
    for moment in occurrences:
        try:
            booked.append(
                appointment_book(
                    patient=patient,
                    practitioner=practitioner,
                    appointment_type=appointment_type,
                    start=moment.astimezone(ZoneInfo("UTC")),
                    booked_by=booked_by,
                    source=source,
                    location=location,
                    telehealth=telehealth,
                    series=series,
                    now=now,
                )
            )
        except ApplicationError as error:  # any refusal of one occurrence
            skipped.append(
                {
                    "start": moment.isoformat(),
                    "code": error.code,
                    "detail": error.detail,
                    "conflicting_appointments": error.extra.get("conflicting_appointments", []),
                    "suggested_alternatives": error.extra.get("suggested_alternatives", [])[:3],
                }
            )
    if skipped and not partial:
        raise SeriesConflictError(
            f"{len(skipped)} of {len(occurrences)} occurrences cannot be booked; nothing was "
            "booked. Send partial=true to book the free ones.",
            extra={"occurrences": skipped},
        )
    if not booked:
        transaction.set_rollback(True)
        return SeriesResult(series=None, booked=[], skipped=skipped)
    return SeriesResult(series=series, booked=booked, skipped=skipped)


@transaction.atomic
def appointment_series_cancel(
    *, series: AppointmentSeries, by=None, reason: str = "", after: datetime | None = None
) -> list[Appointment]:
    """Cancel the series' booked occurrences from `after` (default: now) on."""
    after = after or timezone.now()
    cancelled = []
    for appointment in series.appointments.filter(status=Status.BOOKED, start__gte=after):
        cancelled.append(appointment_cancel(appointment=appointment, by=by, reason=reason))
    return cancelled

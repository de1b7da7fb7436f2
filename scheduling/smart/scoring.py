"""Smart booking's choice: who may see the patient (`eligible_practitioners`) and every free
slot of theirs scored against the patient's need (`score_slots`), best first.

A slot earns points for continuing care with a practitioner the patient has seen, for being
soon, on a preferred day and time of day, for the practitioner's rating and for the
authorization units left that day; a slot the authorization cannot cover is left out (or, where
the clinic books without one, kept last).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Count, Q
from django.utils import timezone

from authorizations import selectors as auth_selectors
from authorizations.services import units_for_visit
from practice import formats
from practice.models import ClinicSettings, Patient, Practitioner

from ..availability import availability, practitioners_offering
from ..models import Appointment, AppointmentType
from .request import TIMES_OF_DAY


@dataclass(slots=True)
class Candidate:
    """A free slot with its score. Its `reasons` are written when first read: a job scores
    thousands of slots and reads the reasons of the one it books."""

    practitioner: Practitioner
    start: datetime
    end: datetime
    location_id: int | None
    score: float = 0.0
    explain: Callable[["Candidate"], list[str]] | None = field(default=None, repr=False)
    _reasons: list[str] | None = field(default=None, repr=False)

    @property
    def reasons(self) -> list[str]:
        if self._reasons is None:
            self._reasons = self.explain(self) if self.explain else []
        return self._reasons


@dataclass
class Need:
    patient: Patient
    appointment_type: AppointmentType
    earliest: datetime
    latest: datetime
    tz: ZoneInfo
    practitioner_ids: list[int] | None
    specialty: str | None
    location_id: int | None
    telehealth: bool | None
    language: str | None
    weekdays: set[int]
    times_of_day: list[str]
    sessions_per_week: int | None
    weeks: int | None
    blocked_by_authorization: bool = False

    @classmethod
    def from_request(cls, patient: Patient, request: dict) -> "Need":
        tz = ZoneInfo(request.get("tz") or patient.timezone or "UTC")
        earliest = datetime.combine(
            date.fromisoformat(request["earliest_date"]), datetime.min.time(), tz
        )
        latest = datetime.combine(
            date.fromisoformat(request["latest_date"]) + timedelta(days=1), datetime.min.time(), tz
        )
        practitioner_ids = request.get("practitioners") or (
            [request["practitioner"]] if request.get("practitioner") else None
        )
        recurring = request.get("recurring") or {}
        return cls(
            patient=patient,
            appointment_type=AppointmentType.objects.select_related("service_code").get(
                pk=request["appointment_type"]
            ),
            earliest=max(earliest, timezone.now()),
            latest=latest,
            tz=tz,
            practitioner_ids=practitioner_ids,
            specialty=request.get("specialty"),
            location_id=request.get("location"),
            telehealth=request.get("telehealth"),
            language=request.get("language"),
            weekdays=set(request.get("preferred_weekdays") or []),
            times_of_day=list(request.get("preferred_times") or []),
            sessions_per_week=recurring.get("sessions_per_week"),
            weeks=recurring.get("weeks"),
        )


def eligible_practitioners(need: Need) -> list[Practitioner]:
    """Active, offering the type and mode, at the location, speaking the language, verified
    where the clinic asks, and accepting new patients unless the patient has seen them."""
    qs = practitioners_offering(
        appointment_type=need.appointment_type,
        practitioner_ids=need.practitioner_ids,
        specialty=need.specialty,
        telehealth=need.telehealth,
    )
    if need.location_id:
        qs = qs.filter(locations=need.location_id)
    if need.language:
        qs = qs.filter(languages__contains=[need.language])
    if ClinicSettings.load().smart_booking_verified_only:
        qs = qs.filter(is_verified=True)
    seen = _seen_practitioners(need.patient)
    qs = qs.filter(Q(accepts_new_patients=True) | Q(pk__in=list(seen)))
    return list(qs)


def _seen_practitioners(patient: Patient) -> dict[int, int]:
    rows = (
        Appointment.objects.filter(patient=patient, status=Appointment.Status.COMPLETED)
        .values("practitioner_id")
        .annotate(visits=Count("id"))
        .values_list("practitioner_id", "visits")
    )
    return dict(rows)


def score_slots(need: Need, practitioners: list[Practitioner]) -> list[Candidate]:
    """Every free slot of every eligible practitioner, scored and sorted best first."""
    if not practitioners:
        return []
    results = availability(
        appointment_type=need.appointment_type,
        start=need.earliest,
        end=need.latest,
        practitioner_ids=[p.pk for p in practitioners],
        location_id=need.location_id,
        telehealth=need.telehealth,
    )
    seen = _seen_practitioners(need.patient)
    span = max((need.latest - need.earliest).total_seconds(), 1)
    units_left = _units_left_by_day(need)
    code = need.appointment_type.service_code
    units_needed = (
        units_for_visit(minutes=need.appointment_type.duration_minutes, service_code=code)
        if code
        else 0
    )
    refuse_without_authorization = bool(
        code
        and code.requires_authorization
        and ClinicSettings.load().authorization_policy == ClinicSettings.AuthorizationPolicy.REFUSE
    )
    tz, earliest, weekdays = need.tz, need.earliest, need.weekdays
    hours = [TIMES_OF_DAY[name] for name in need.times_of_day]
    needs_local = bool(weekdays or hours or units_left is not None)

    def explain(c: Candidate) -> list[str]:
        """The reasons, in the order the score adds them up."""
        p, local, reasons = c.practitioner, c.start.astimezone(tz), []
        if p.pk in seen:
            reasons.append(f"Continues care with {p.display_name} ({seen[p.pk]} earlier visit(s)).")
        if weekdays and local.weekday() in weekdays:
            reasons.append(f"On a preferred day ({local:%A}).")
        if hours and any(lo <= local.hour < hi for lo, hi in hours):
            reasons.append(f"At a preferred time of day ({formats.message_time(local, zone=tz)}).")
        rating = float(p.rating_average or 0)
        if rating >= 4.5:
            reasons.append(f"{p.display_name} is rated {rating:.1f}/5.")
        if units_left is not None:
            left = units_left(local.date())
            if left is not None:
                reasons.append(f"Covered by your authorization ({left} units left).")
        return reasons

    candidates = []
    for result in results:
        p = result.practitioner
        returning = p.pk in seen
        rating = float(p.rating_average or 0)
        for slot in result.slots:
            # The same additions in the same order as the reasons (float sums, same ties).
            score = 0.0
            if returning:
                score += 40
            soon = 1 - (slot.start - earliest).total_seconds() / span
            score += 30 * max(soon, 0)
            if needs_local:
                local = slot.start.astimezone(tz)
                if weekdays and local.weekday() in weekdays:
                    score += 15
                if hours and any(lo <= local.hour < hi for lo, hi in hours):
                    score += 15
            score += 2 * rating
            if units_left is not None:
                left = units_left(local.date())
                if left is None:
                    if refuse_without_authorization:
                        need.blocked_by_authorization = True
                        continue  # the booking would be refused
                    score -= 100  # booked with a warning: only when nothing else fits
                elif left < units_needed:
                    need.blocked_by_authorization = True
                    continue
                else:
                    score += min(10, left / 4)
            candidates.append(Candidate(p, slot.start, slot.end, slot.location_id, score, explain))
    candidates.sort(key=lambda c: (-c.score, c.start, c.practitioner.pk))
    return candidates


def units_of(kind: AppointmentType) -> int:
    """Authorization units of one visit of `kind` (0 without a service code)."""
    code = kind.service_code
    return units_for_visit(minutes=kind.duration_minutes, service_code=code) if code else 0


def _units_left_by_day(need: Need):
    code = need.appointment_type.service_code
    if code is None:
        return None

    def left(day: date) -> int | None:
        line = auth_selectors.line_for_visit(
            patient=need.patient, service_code=code, service_date=day
        )
        return line.units_remaining if line else None

    cache: dict[date, int | None] = {}

    def cached(day: date) -> int | None:
        if day not in cache:
            cache[day] = left(day)
        return cache[day]

    return cached

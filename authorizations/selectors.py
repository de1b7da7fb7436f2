from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import F, OuterRef, Prefetch, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from practice.models import Patient, ServiceCode

from .models import Authorization, AuthorizationLine, AuthorizationRequest, UnitReservation

LIVE = (Authorization.Status.ACTIVE, Authorization.Status.EXHAUSTED)


def line_for_visit(
    *, patient: Patient, service_code: ServiceCode, service_date: date
) -> AuthorizationLine | None:
    """The line that pays for this visit: a live authorization of the patient covering the
    date, with a line for the code. When several do, the one ending first (units that expire
    soonest are used first)."""
    return (
        AuthorizationLine.objects.filter(
            authorization__patient=patient,
            authorization__status__in=LIVE,
            authorization__start_date__lte=service_date,
            authorization__end_date__gte=service_date,
            service_codes=service_code,
        )
        .select_related("authorization")
        .order_by("authorization__end_date", "id")
        .first()
    )


def patient_has_authorization_for(*, patient: Patient, service_code: ServiceCode) -> bool:
    return AuthorizationLine.objects.filter(
        authorization__patient=patient, service_codes=service_code
    ).exists()


@dataclass(frozen=True)
class Alert:
    kind: str  # "threshold" or "expiring"
    message: str


def authorization_alerts(authorization: Authorization, *, today: date | None = None) -> list[Alert]:
    """Lines at or above the threshold, and expiry within the alert window (lines prefetched)."""
    today = today or timezone.localdate()
    alerts = []
    if authorization.status in LIVE:
        for line in authorization.lines.all():
            if line.percent_used >= authorization.alert_threshold_percent:
                alerts.append(
                    Alert(
                        "threshold",
                        f"{line.percent_used:g}% of {line.units_authorized} units used or "
                        f"scheduled ({line.units_remaining} left).",
                    )
                )
        days_left = (authorization.end_date - today).days
        if 0 <= days_left <= authorization.alert_days_before_expiry:
            alerts.append(Alert("expiring", f"Expires in {days_left} day(s)."))
    return alerts


def authorization_list() -> QuerySet[Authorization]:
    return Authorization.objects.select_related("patient", "coverage__payer").prefetch_related(
        Prefetch("lines", queryset=AuthorizationLine.objects.prefetch_related("service_codes"))
    )


def authorizations_expiring(*, within_days: int, today: date | None = None) -> QuerySet:
    today = today or timezone.localdate()
    return authorization_list().filter(
        status__in=LIVE, end_date__gte=today, end_date__lte=today + timedelta(days=within_days)
    )


def authorizations_over_threshold() -> QuerySet:
    """Live authorizations with a line at or above the authorization's threshold."""
    return (
        authorization_list()
        .filter(
            status__in=LIVE,
            lines__units_authorized__gt=0,
        )
        .filter(
            lines__units_scheduled__gte=(
                F("lines__units_authorized") * F("alert_threshold_percent") / 100.0
                - F("lines__units_used")
            )
        )
        .distinct()
    )


def ledger_mismatches() -> list[int]:
    """Lines whose counters differ from their ledger's sums. Must be empty, always.

    One statement, so one snapshot: counters and ledger read at different moments would
    disagree while a reservation commits in between."""
    reserved, consumed = UnitReservation.State.RESERVED, UnitReservation.State.CONSUMED
    ledger = UnitReservation.objects.filter(line=OuterRef("pk")).order_by().values("line")

    def total(state: str) -> Coalesce:
        return Coalesce(
            Subquery(ledger.filter(state=state).annotate(t=Sum("units")).values("t")),
            0,
        )

    return list(
        AuthorizationLine.objects.annotate(
            ledger_scheduled=total(reserved), ledger_used=total(consumed)
        )
        .exclude(units_scheduled=F("ledger_scheduled"), units_used=F("ledger_used"))
        .order_by("id")
        .values_list("id", flat=True)
    )


def lines_overdrawn() -> list[int]:
    return list(
        AuthorizationLine.objects.filter(
            units_scheduled__gt=F("units_authorized") - F("units_used")
        ).values_list("id", flat=True)
    )


def authorizations_for_patient(*, patient: Patient, today: date | None = None) -> list:
    """A patient's live authorizations that have not ended, with their lines and service
    codes (three queries): what the patient pages show as units left."""
    today = today or timezone.localdate()
    return list(
        authorization_list()
        .filter(patient=patient, status__in=LIVE, end_date__gte=today)
        .order_by("end_date", "id")
    )


@dataclass(frozen=True)
class AuthorizationNeed:
    """What a patient's authorizations say about visits of one service code from `today`:
    `state` is "not_needed" (the code needs none), "covered" (a live authorization with units
    left), "exhausted" (live ones, none with the units of one visit) or "none" (no live
    authorization at all); with the lines that can pay, and the patient's open or last
    request."""

    state: str
    lines: tuple[AuthorizationLine, ...] = ()
    request: AuthorizationRequest | None = None
    service_code: ServiceCode | None = None
    units: int = 0  # of one visit

    @property
    def units_left(self) -> int:
        return max((line.units_remaining for line in self.lines), default=0)

    @property
    def blocks_booking(self) -> bool:
        return self.state in ("none", "exhausted")

    def covers(self, day: date, units: int) -> bool:
        """Whether a visit of `units` on `day` can be paid by one of the lines (week caps
        are left to the booking, which refuses with its own reason)."""
        return any(
            line.authorization.start_date <= day <= line.authorization.end_date
            and line.units_remaining >= units
            for line in self.lines
        )


def authorization_need(
    *, patient: Patient | None, service_code: ServiceCode | None, units: int, today: date
) -> AuthorizationNeed:
    """Whether `patient` can book visits of `service_code` (each `units` long) on their
    authorizations (two queries): what the slot picker and smart booking say before any slot."""
    if service_code is None or not service_code.requires_authorization:
        return AuthorizationNeed("not_needed", service_code=service_code, units=units)
    if patient is None:
        return AuthorizationNeed("none", service_code=service_code, units=units)
    lines = tuple(
        AuthorizationLine.objects.filter(
            authorization__patient=patient,
            authorization__status__in=LIVE,
            authorization__end_date__gte=today,
            service_codes=service_code,
        )
        .select_related("authorization")
        .order_by("authorization__end_date", "id")
    )
    request = (
        AuthorizationRequest.objects.filter(patient=patient, service_code=service_code)
        .select_related("authorization")
        .order_by("-requested_at", "-id")
        .first()
    )
    state = (
        "covered"
        if any(line.units_remaining >= units for line in lines)
        else "exhausted"
        if lines
        else "none"
    )
    return AuthorizationNeed(state, lines, request, service_code, units)


def authorization_requests_for_patient(*, patient: Patient) -> list[AuthorizationRequest]:
    """The patient's requests, newest first (their appointments page)."""
    return list(
        AuthorizationRequest.objects.filter(patient=patient)
        .select_related("service_code", "authorization")
        .order_by("-requested_at", "-id")
    )

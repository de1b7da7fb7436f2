"""Authorizations with their lines, and the unit ledger: create, update, reserve, release,
consume, move. Each function owns its transaction.

A line is never overdrawn because the reservation is one conditional UPDATE
(`... WHERE units_scheduled + units_used + n <= units_authorized`) in the same transaction as
its ledger row; a CHECK constraint backs it. Lines with a weekly cap are row-locked first so
the week's sum and the update are one decision.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from clinic.errors import constraint_name
from practice.models import ClinicSettings, Coverage, Patient, ServiceCode

from .errors import (
    AuthorizationExhaustedError,
    AuthorizationLineBelowUsageError,
    AuthorizationLineInUseError,
    AuthorizationNotValidError,
    AuthorizationRequestDecidedError,
    AuthorizationWeeklyCapError,
    ReservationStateError,
)
from .models import Authorization, AuthorizationLine, AuthorizationRequest, UnitReservation
from .signals import authorization_expiring, authorization_threshold_reached

State = UnitReservation.State


def units_for_visit(*, minutes: int, service_code: ServiceCode, rounding: str | None = None) -> int:
    """Billing units of a visit: minutes / the code's unit length, rounded by the clinic's rule
    (default up); per-visit codes count 1."""
    if not service_code.unit_minutes:
        return 1
    rounding = rounding or ClinicSettings.load().unit_rounding
    exact = minutes / service_code.unit_minutes
    if rounding == ClinicSettings.UnitRounding.DOWN:
        return max(1, math.floor(exact))
    if rounding == ClinicSettings.UnitRounding.NEAREST:
        return max(1, math.floor(exact + 0.5))
    return max(1, math.ceil(exact))


def _week(day: date) -> tuple[date, date]:
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def _exhausted(line: AuthorizationLine, units: int) -> AuthorizationExhaustedError:
    line.refresh_from_db(fields=["units_scheduled", "units_used", "units_authorized"])
    left = line.units_remaining
    return AuthorizationExhaustedError(
        f"Authorization {line.authorization.number} has {left} unit(s) left; {units} needed.",
        extra={"units_left": left, "units_requested": units, "line": line.pk},
    )


def _check_dates(line: AuthorizationLine, service_date: date) -> None:
    authorization = line.authorization
    if authorization.status not in (Authorization.Status.ACTIVE, Authorization.Status.EXHAUSTED):
        raise AuthorizationNotValidError(
            f"Authorization {authorization.number} is {authorization.get_status_display().lower()}."
        )
    if not authorization.start_date <= service_date <= authorization.end_date:
        raise AuthorizationNotValidError(
            f"{service_date:%d %b %Y} is outside authorization {authorization.number} "
            f"({authorization.start_date:%d %b %Y} – {authorization.end_date:%d %b %Y}).",
            extra={"start_date": authorization.start_date, "end_date": authorization.end_date},
        )


def _check_weekly_cap(
    line: AuthorizationLine, units: int, service_date: date, exclude=None
) -> None:
    cap = line.weekly_cap
    if cap is None:  # no weekly cap (callers check first)
        return
    monday, sunday = _week(service_date)
    taken = UnitReservation.objects.filter(
        line=line,
        state__in=(State.RESERVED, State.CONSUMED),
        service_date__range=(monday, sunday),
    )
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    week_total = taken.aggregate(total=Sum("units"))["total"] or 0
    if week_total + units > cap:
        raise AuthorizationWeeklyCapError(
            f"Authorization {line.authorization.number} allows {line.weekly_cap} units a week; "
            f"the week of {monday:%d %b} already has {week_total}.",
            extra={
                "weekly_cap": line.weekly_cap,
                "week_units": week_total,
                "units_requested": units,
            },
        )


def _take(line: AuthorizationLine, *, scheduled: int = 0, used: int = 0) -> int | None:
    """The conditional UPDATE: add to the counters only if the line stays within its units.
    Returns the units left on the line after it, or None when they were not there."""
    need = scheduled + used
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {AuthorizationLine._meta.db_table}"  # noqa: S608 (a model's table name)
            " SET units_scheduled = units_scheduled + %s, units_used = units_used + %s"
            " WHERE id = %s AND units_scheduled + units_used + %s <= units_authorized"
            " RETURNING units_authorized - units_scheduled - units_used",
            [scheduled, used, line.pk, need],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


def _threshold_check(line: AuthorizationLine, *, taken: int, units_left: int) -> None:
    """Tell (`authorization_threshold_reached`) when taking `taken` units brought the line to
    its authorization's alert threshold from below it. Arithmetic on what the UPDATE returned:
    no query unless it crossed."""
    total = line.units_authorized
    if total <= 0 or taken <= 0:
        return
    threshold = line.authorization.alert_threshold_percent
    after = 100 * (total - units_left) / total
    before = 100 * (total - units_left - taken) / total
    if before < threshold <= after:
        authorization_threshold_reached.send(
            sender=AuthorizationLine, authorization_id=line.authorization_id, line_id=line.pk,
            percent_used=round(after, 1),
        )  # fmt: skip


def _status_may_change(line: AuthorizationLine, units_left: int) -> bool:
    """After units were taken from `line`: whether its authorization's status can be other
    than it is (an active one with units left on this line, before its end, stays active)."""
    authorization = line.authorization
    return (
        units_left <= 0
        or authorization.status != Authorization.Status.ACTIVE
        or timezone.localdate() > authorization.end_date
    )


@transaction.atomic
def units_reserve(
    *,
    line: AuthorizationLine,
    units: int,
    service_date: date,
    by=None,
    reference: str = "",
    idempotency_key: str | None = None,
) -> UnitReservation:
    """Reserve `units` for a visit on `service_date`. Raises AuthorizationExhaustedError (409,
    with the units left), AuthorizationWeeklyCapError or AuthorizationNotValidError; nothing is
    written then. A repeated idempotency key returns the first reservation."""
    if idempotency_key:
        existing = UnitReservation.objects.filter(
            line=line, idempotency_key=idempotency_key
        ).first()
        if existing is not None:
            return existing
    _check_dates(line, service_date)
    if line.weekly_cap:
        AuthorizationLine.objects.select_for_update().filter(pk=line.pk).exists()
        _check_weekly_cap(line, units, service_date)
    left = _take(line, scheduled=units)
    if left is None:
        raise _exhausted(line, units)
    try:
        # Only a key can collide: a savepoint (two more round trips) only then.
        with transaction.atomic() if idempotency_key else nullcontext():
            reservation = UnitReservation.objects.create(
                line=line,
                units=units,
                service_date=service_date,
                reference=reference,
                idempotency_key=idempotency_key or None,
                created_by=by,
            )
    except IntegrityError:
        if not idempotency_key:
            raise
        # A concurrent request with the same key won: give our units back, return theirs.
        AuthorizationLine.objects.filter(pk=line.pk).update(
            units_scheduled=F("units_scheduled") - units
        )
        return UnitReservation.objects.get(line=line, idempotency_key=idempotency_key)
    _threshold_check(line, taken=units, units_left=left)
    if _status_may_change(line, left):
        authorization_refresh_status(authorization=line.authorization)
    return reservation


def _locked(reservation: UnitReservation) -> UnitReservation:
    return (
        UnitReservation.objects.select_for_update(of=("self",))
        .select_related("line__authorization")
        .get(pk=reservation.pk)
    )


@transaction.atomic
def units_release(*, reservation: UnitReservation, by=None) -> UnitReservation:
    """Give reserved units back (cancel, no-show). Releasing twice is a no-op; releasing
    consumed units is refused."""
    reservation = _locked(reservation)
    if reservation.state == State.RELEASED:
        return reservation
    if reservation.state != State.RESERVED:
        raise ReservationStateError("Consumed units cannot be released.")
    AuthorizationLine.objects.filter(pk=reservation.line_id).update(
        units_scheduled=F("units_scheduled") - reservation.units
    )
    reservation.state = State.RELEASED
    reservation.released_at = timezone.now()
    reservation.changed_by = by
    reservation.save(update_fields=["state", "released_at", "changed_by", "updated_at"])
    authorization_refresh_status(authorization=reservation.line.authorization)
    return reservation


@transaction.atomic
def units_consume(*, reservation: UnitReservation, by=None) -> UnitReservation:
    """Turn reserved units into used ones (a completed visit). Idempotent; refused for
    released units."""
    reservation = _locked(reservation)
    if reservation.state == State.CONSUMED:
        return reservation
    if reservation.state != State.RESERVED:
        raise ReservationStateError("Released units cannot be consumed; reserve them again.")
    AuthorizationLine.objects.filter(pk=reservation.line_id).update(
        units_scheduled=F("units_scheduled") - reservation.units,
        units_used=F("units_used") + reservation.units,
    )
    reservation.state = State.CONSUMED
    reservation.consumed_at = timezone.now()
    reservation.changed_by = by
    reservation.save(update_fields=["state", "consumed_at", "changed_by", "updated_at"])
    authorization_refresh_status(authorization=reservation.line.authorization)
    return reservation


@transaction.atomic
def units_use(
    *,
    line: AuthorizationLine,
    units: int,
    service_date: date,
    by=None,
    reference: str = "",
    idempotency_key: str | None = None,
) -> UnitReservation:
    """Record units rendered without a prior reservation (e.g. reported by an integrator)."""
    if idempotency_key:
        existing = UnitReservation.objects.filter(
            line=line, idempotency_key=idempotency_key
        ).first()
        if existing is not None:
            return existing
    _check_dates(line, service_date)
    if line.weekly_cap:
        AuthorizationLine.objects.select_for_update().filter(pk=line.pk).exists()
        _check_weekly_cap(line, units, service_date)
    left = _take(line, used=units)
    if left is None:
        raise _exhausted(line, units)
    _threshold_check(line, taken=units, units_left=left)
    reservation = UnitReservation.objects.create(
        line=line,
        units=units,
        service_date=service_date,
        state=State.CONSUMED,
        consumed_at=timezone.now(),
        reference=reference,
        idempotency_key=idempotency_key or None,
        created_by=by,
    )
    authorization_refresh_status(authorization=line.authorization)
    return reservation


@transaction.atomic
def units_move(
    *, reservation: UnitReservation, service_date: date, units: int | None = None, by=None
) -> UnitReservation:
    """A rescheduled visit: keep the reservation when the new date is still inside its
    authorization (and week cap), else raise so the caller can look for another line."""
    reservation = _locked(reservation)
    if reservation.state != State.RESERVED:
        raise ReservationStateError("Only reserved units move with a visit.")
    line = reservation.line
    units = units or reservation.units
    _check_dates(line, service_date)
    if line.weekly_cap:
        AuthorizationLine.objects.select_for_update().filter(pk=line.pk).exists()
        _check_weekly_cap(line, units, service_date, exclude=reservation)
    extra = units - reservation.units
    if extra > 0 and _take(line, scheduled=extra) is None:
        raise _exhausted(line, extra)
    if extra < 0:
        AuthorizationLine.objects.filter(pk=line.pk).update(
            units_scheduled=F("units_scheduled") + extra
        )
    reservation.service_date = service_date
    reservation.units = units
    reservation.changed_by = by
    reservation.save(update_fields=["service_date", "units", "changed_by", "updated_at"])
    return reservation


@transaction.atomic
def authorization_line_limits_set(
    *, line: AuthorizationLine, units_authorized: int, weekly_cap: int | None
) -> AuthorizationLine:
    """Change a line's authorized units and weekly cap, never its counters (the ledger owns
    them: a whole-row save would write back counters read before a concurrent reservation).
    One conditional UPDATE refuses fewer units than are scheduled and used at that moment."""
    changed = AuthorizationLine.objects.filter(
        pk=line.pk, units_scheduled__lte=units_authorized - F("units_used")
    ).update(units_authorized=units_authorized, weekly_cap=weekly_cap)
    line.refresh_from_db(fields=["units_authorized", "weekly_cap", "units_scheduled", "units_used"])
    if not changed:
        taken = line.units_scheduled + line.units_used
        raise AuthorizationLineBelowUsageError(
            f"{taken} units are already scheduled or used; authorize at least that many."
        )
    authorization_refresh_status(authorization=line.authorization)
    return line


# --- Authorizations and their lines ------------------------------------------------------------

AUTHORIZATION_FIELDS = (
    "patient",
    "coverage",
    "number",
    "start_date",
    "end_date",
    "status",
    "alert_threshold_percent",
    "alert_days_before_expiry",
    "notes",
)


@dataclass(frozen=True)
class LineSpec:
    """A line as the client gives it. `id` names an existing line of the authorization to keep
    (its limits and codes become these); without it, the line is new."""

    service_codes: Sequence[ServiceCode]
    units_authorized: int
    weekly_cap: int | None = None
    id: int | None = None


def _authorization_check(authorization: Authorization, *, changed: Iterable[str]) -> None:
    """The rules across fields, for what the request `changed`: the end is not before the
    start, and the coverage is the patient's. A mismatch is put on the field that was changed
    (`coverage` when both were): moving an authorization to another patient while its
    coverage stays the first's is refused on `patient`."""
    changed = set(changed)
    if {"start_date", "end_date"} & changed and authorization.end_date < authorization.start_date:
        raise ValidationError({"end_date": "The end must not be before the start."})
    if {"patient", "coverage"} & changed:
        coverage: Coverage = authorization.coverage
        if coverage.patient_id != authorization.patient_id:
            if "coverage" in changed:
                raise ValidationError({"coverage": "This coverage is another patient's."})
            raise ValidationError(
                {
                    "patient": "The authorization's coverage is another patient's; give the "
                    "new patient's coverage with it."
                }
            )


def _authorization_save(authorization: Authorization, *, update_fields=None) -> None:
    try:
        with transaction.atomic():
            authorization.save(update_fields=update_fields)
    except IntegrityError as error:
        if constraint_name(error).startswith("authorization_number_unique"):
            raise ValidationError(
                {"number": "This coverage already has an authorization with this number."}
            ) from error
        raise


def _line_create(authorization: Authorization, spec: LineSpec) -> AuthorizationLine:
    line = AuthorizationLine.objects.create(
        authorization=authorization,
        units_authorized=spec.units_authorized,
        weekly_cap=spec.weekly_cap,
    )
    line.service_codes.set(spec.service_codes)
    return line


def _lines_replace(authorization: Authorization, specs: Sequence[LineSpec]) -> None:
    """Make the authorization's lines exactly `specs`: named lines are kept and changed
    (limits through `authorization_line_limits_set`, which refuses fewer units than taken),
    lines without an id are added, lines left out are deleted. The lines are row-locked first,
    so no reservation lands on a line while it is being dropped; a line the ledger has entries
    for is never dropped (409, nothing changed)."""
    if not specs:
        raise ValidationError({"lines": "Give at least one line."})
    current = {
        line.pk: line
        for line in AuthorizationLine.objects.select_for_update().filter(
            authorization=authorization
        )
    }
    named: set[int] = set()
    errors = {}
    for index, spec in enumerate(specs):
        if spec.id is None:
            continue
        if spec.id not in current:
            errors[f"lines.{index}.id"] = [
                f"Authorization {authorization.number} has no line {spec.id}."
            ]
        elif spec.id in named:
            errors[f"lines.{index}.id"] = [f"Line {spec.id} is given more than once."]
        named.add(spec.id)
    if errors:
        raise ValidationError(errors)
    dropped = [pk for pk in current if pk not in named]
    in_use = sorted(
        set(UnitReservation.objects.filter(line_id__in=dropped).values_list("line_id", flat=True))
    )
    if in_use:
        raise AuthorizationLineInUseError(
            f"Line(s) {', '.join(map(str, in_use))} of authorization {authorization.number} "
            "have units in the ledger: send them with their id to keep them.",
            extra={"errors": {"lines": ["A line with ledger entries cannot be removed."]},
                   "lines": in_use},
        )  # fmt: skip
    if dropped:
        AuthorizationLine.objects.filter(pk__in=dropped).delete()
    for spec in specs:
        if spec.id is None:
            _line_create(authorization, spec)
            continue
        line = current[spec.id]
        line.service_codes.set(spec.service_codes)
        if (line.units_authorized, line.weekly_cap) != (spec.units_authorized, spec.weekly_cap):
            authorization_line_limits_set(
                line=line, units_authorized=spec.units_authorized, weekly_cap=spec.weekly_cap
            )
    authorization_refresh_status(authorization=authorization)


@transaction.atomic
def authorization_create(
    *,
    patient: Patient,
    coverage: Coverage,
    number: str,
    start_date: date,
    end_date: date,
    lines: Sequence[LineSpec],
    status: str = Authorization.Status.ACTIVE,
    alert_threshold_percent: int = 80,
    alert_days_before_expiry: int = 30,
    notes: str = "",
) -> Authorization:
    """A prior authorization with its lines (at least one). Refused, naming the field, when
    the end is before the start, the coverage is another patient's, there is no line, or the
    coverage already has this number (the database's unique constraint is the guarantee)."""
    authorization = Authorization(
        patient=patient,
        coverage=coverage,
        number=number,
        start_date=start_date,
        end_date=end_date,
        status=status,
        alert_threshold_percent=alert_threshold_percent,
        alert_days_before_expiry=alert_days_before_expiry,
        notes=notes,
    )
    _authorization_check(authorization, changed=AUTHORIZATION_FIELDS)
    if not lines:
        raise ValidationError({"lines": "Give at least one line."})
    for index, spec in enumerate(lines):
        if spec.id is not None:
            raise ValidationError({f"lines.{index}.id": ["A new authorization has no lines yet."]})
    _authorization_save(authorization)
    for spec in lines:
        _line_create(authorization, spec)
    return authorization


@transaction.atomic
def authorization_update(
    *,
    authorization: Authorization,
    data: Mapping[str, Any],
    lines: Sequence[LineSpec] | None = None,
) -> Authorization:
    """Change an authorization's fields (`data`, any of AUTHORIZATION_FIELDS) and, when
    `lines` is given, replace its lines with them (`_lines_replace`: a PUT that sends its one
    line twice is refused, never turned into three lines). The row is locked; a refusal, from
    the fields or from the lines, rolls the whole change back."""
    unknown = set(data) - set(AUTHORIZATION_FIELDS)
    if unknown:
        raise ValidationError({name: "This field cannot be changed here." for name in unknown})
    authorization = (
        Authorization.objects.select_for_update(of=("self",))
        .select_related("coverage")
        .get(pk=authorization.pk)
    )
    changed = []
    for name, value in data.items():
        if getattr(authorization, name) != value:
            setattr(authorization, name, value)
            changed.append(name)
    _authorization_check(authorization, changed=changed)
    if changed:
        _authorization_save(authorization, update_fields=[*changed, "updated_at"])
    if lines is not None:
        _lines_replace(authorization, lines)
    return authorization


def authorization_refresh_status(*, authorization: Authorization, today: date | None = None) -> str:
    """Status follows the dates and counters: expired after the end date, exhausted when no
    line has units left, active again when units come back. Manual states stay."""
    if authorization.status in (
        Authorization.Status.PENDING,
        Authorization.Status.CANCELLED,
        Authorization.Status.DENIED,
    ):
        return authorization.status
    today = today or timezone.localdate()
    if today > authorization.end_date:
        status = Authorization.Status.EXPIRED
    else:
        left = AuthorizationLine.objects.filter(authorization=authorization).values_list(
            "units_authorized", "units_scheduled", "units_used"
        )
        exhausted = all(total - scheduled - used <= 0 for total, scheduled, used in left)
        status = (
            Authorization.Status.EXHAUSTED if exhausted and left else Authorization.Status.ACTIVE
        )
    if status != authorization.status:
        Authorization.objects.filter(pk=authorization.pk).update(status=status)
        authorization.status = status
    return status


def authorizations_refresh_all(*, today: date | None = None) -> int:
    """Daily: bring every live authorization's status up to date. Returns how many changed."""
    changed = 0
    live = Authorization.objects.filter(
        status__in=(Authorization.Status.ACTIVE, Authorization.Status.EXHAUSTED)
    )
    for authorization in live:
        before = authorization.status
        if authorization_refresh_status(authorization=authorization, today=today) != before:
            changed += 1
    return changed


def authorization_alerts_send(*, clinic_name: str, today: date | None = None) -> int:
    """Refresh statuses, then email the clinic's front desk one digest of the authorizations
    at or above their threshold or expiring soon. Returns the number of authorizations listed."""
    from django.contrib.auth import get_user_model
    from django.core.mail import send_mail

    from practice import formats

    from .selectors import authorization_alerts, authorization_list

    today = today or timezone.localdate()
    authorizations_refresh_all(today=today)
    listed = []
    for authorization in authorization_list().filter(
        status__in=(Authorization.Status.ACTIVE, Authorization.Status.EXHAUSTED)
    ):
        alerts = authorization_alerts(authorization, today=today)
        if any(alert.kind == "expiring" for alert in alerts):
            authorization_expiring.send(
                sender=Authorization, authorization_id=authorization.pk,
                days_left=(authorization.end_date - today).days,
            )  # fmt: skip
        if alerts:
            messages = "; ".join(alert.message for alert in alerts)
            listed.append(f"- {authorization.patient} · {authorization.number}: {messages}")
    recipients = list(
        get_user_model()
        .objects.filter(groups__name="front_desk", is_active=True)
        .values_list("email", flat=True)
    )
    if listed and recipients:
        send_mail(
            subject=f"{clinic_name}: {len(listed)} authorization(s) need attention",
            message="\n".join(
                [
                    "Authorizations at their alert threshold or expiring soon "
                    f"({formats.date_format(today, locale=formats.style_load().locale)}):",
                    "",
                    *listed,
                ]
            ),
            from_email=None,
            recipient_list=recipients,
        )
    return len(listed)


# --- Requests for an assessment / authorization ------------------------------------------------


@transaction.atomic
def authorization_request_create(
    *,
    patient: Patient,
    service_code: ServiceCode,
    by=None,
    visit_name: str = "",
    message: str = "",
) -> AuthorizationRequest:
    """A request for an authorization of `service_code`, for the front desk's queue. While one
    is open for the patient and code, asking again returns it (a double submit, a second tab):
    the patient's row is locked first, and `authorization_request_one_pending` guarantees it.
    The patient's active primary coverage, when there is one, goes with it."""
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    if not patient.is_active:
        raise ValidationError({"patient": "The patient record is inactive."})
    open_request = AuthorizationRequest.objects.filter(
        patient=patient, service_code=service_code, status=AuthorizationRequest.Status.PENDING
    ).first()
    if open_request is not None:
        return open_request
    if len(message) > 2000:
        raise ValidationError({"message": "At most 2000 characters."})
    coverage = (
        Coverage.objects.filter(patient=patient, is_active=True)
        .order_by("priority", "-effective_from", "id")
        .first()
    )
    return AuthorizationRequest.objects.create(
        patient=patient,
        service_code=service_code,
        coverage=coverage,
        visit_name=visit_name[:200],
        message=message,
        requested_at=timezone.now(),
        requested_by=by,
    )


def _pending_locked(request: AuthorizationRequest) -> AuthorizationRequest:
    locked = (
        AuthorizationRequest.objects.select_for_update(of=("self",))
        .select_related("patient", "service_code")
        .get(pk=request.pk)
    )
    if locked.status != AuthorizationRequest.Status.PENDING:
        raise AuthorizationRequestDecidedError(
            f"This request was already {locked.get_status_display().lower()}.",
            # not "status": the problem document's own member is the HTTP status
            extra={"request_status": locked.status},
        )
    return locked


@transaction.atomic
def authorization_request_approve(
    *,
    request: AuthorizationRequest,
    number: str,
    start_date: date,
    end_date: date,
    units_authorized: int,
    weekly_cap: int | None = None,
    coverage: Coverage | None = None,
    by=None,
) -> AuthorizationRequest:
    """Approve: create the authorization (one line for the requested code, through
    `authorization_create` and its checks) and close the request, in one transaction under the
    request's row lock, so two clerks approving at once create one authorization (the second
    gets a 409). The coverage is the one given, else the request's."""
    locked = _pending_locked(request)
    coverage = coverage or locked.coverage
    if coverage is None:
        raise ValidationError({"coverage": "The patient has no coverage on file: add it first."})
    authorization = authorization_create(
        patient=locked.patient,
        coverage=coverage,
        number=number,
        start_date=start_date,
        end_date=end_date,
        lines=[
            LineSpec(
                service_codes=[locked.service_code],
                units_authorized=units_authorized,
                weekly_cap=weekly_cap,
            )
        ],
        notes=f"From authorization request {locked.pk}.",
    )
    locked.status = AuthorizationRequest.Status.APPROVED
    locked.authorization = authorization
    locked.coverage = coverage
    locked.decided_at = timezone.now()
    locked.decided_by = by
    locked.save(update_fields=["status", "authorization", "coverage", "decided_at", "decided_by"])
    return locked


@transaction.atomic
def authorization_request_decline(
    *, request: AuthorizationRequest, reason: str, by=None
) -> AuthorizationRequest:
    """Decline with a reason the patient reads (`authorization_request_declined_has_reason`)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why, for the patient."})
    if len(reason) > 300:
        raise ValidationError({"reason": "At most 300 characters."})
    locked = _pending_locked(request)
    locked.status = AuthorizationRequest.Status.DECLINED
    locked.decline_reason = reason
    locked.decided_at = timezone.now()
    locked.decided_by = by
    locked.save(update_fields=["status", "decline_reason", "decided_at", "decided_by"])
    return locked

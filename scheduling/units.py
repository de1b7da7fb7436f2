"""An appointment's authorization units, in its booking's own transaction: reserved on the
patient's authorization line when it is booked, released when it is cancelled, kept, moved or
reserved again when it is rescheduled. The ledger (`authorizations.services`) keeps the counts
and their constraints; this picks the line, and says why none covers a visit."""

from zoneinfo import ZoneInfo

from authorizations import selectors as auth_selectors
from authorizations import services as ledger
from authorizations.errors import (
    AuthorizationNotValidError,
    AuthorizationRequiredError,
    AuthorizationWeeklyCapError,
)
from authorizations.models import AuthorizationLine
from practice import formats
from practice.models import ClinicSettings, ServiceCode

from .models import Appointment


def _service_date(appointment: Appointment):
    return appointment.start.astimezone(ZoneInfo(appointment.practitioner.timezone)).date()


def _units_needed(appointment: Appointment) -> int:
    code = appointment.appointment_type.service_code
    # Units are reserved only for types with a service code (appointment_units_reserve).
    assert code is not None, "units of a visit whose type has no service code"
    minutes = int((appointment.end - appointment.start).total_seconds() // 60)
    return ledger.units_for_visit(minutes=minutes, service_code=code)


def _no_authorization(appointment: Appointment, code: ServiceCode, day) -> str:
    """Why no authorization covers this visit of `code` (for the refusal or the warning)."""
    last = (
        AuthorizationLine.objects.filter(
            authorization__patient=appointment.patient, service_codes=code
        )
        .select_related("authorization")
        .order_by("-authorization__end_date")
        .first()
    )
    if last is not None and day > last.authorization.end_date:
        return (
            f"{formats.message_date(day)} is after the end of authorization "
            f"{last.authorization.number} ({formats.message_date(last.authorization.end_date)})."
        )
    if last is not None and day < last.authorization.start_date:
        return (
            f"{formats.message_date(day)} is before authorization {last.authorization.number} "
            f"starts ({formats.message_date(last.authorization.start_date)})."
        )
    return f"No active authorization covers {code.code} on {formats.message_date(day)}."


def appointment_units_reserve(appointment: Appointment, *, by) -> None:
    """Reserve the visit's units on the patient's authorization, in the booking's transaction.

    No covering authorization: for a code that needs one, the clinic's policy refuses the
    booking (409) or books it with a warning on the appointment."""
    code = appointment.appointment_type.service_code
    if code is None:
        return
    day = _service_date(appointment)
    line = auth_selectors.line_for_visit(
        patient=appointment.patient, service_code=code, service_date=day
    )
    if line is None:
        if not code.requires_authorization:
            return
        reason = _no_authorization(appointment, code, day)
        if ClinicSettings.load().authorization_policy == ClinicSettings.AuthorizationPolicy.REFUSE:
            raise AuthorizationRequiredError(reason)
        appointment.authorization_warning = reason[:300]
        appointment.save(update_fields=["authorization_warning"])
        return
    appointment.unit_reservation = ledger.units_reserve(
        line=line,
        units=_units_needed(appointment),
        service_date=day,
        by=by,
        reference=f"appointment:{appointment.pk}",
    )
    appointment.save(update_fields=["unit_reservation"])


def appointment_units_release(appointment: Appointment, *, by) -> None:
    reservation = appointment.unit_reservation  # None, without a query, when there is none
    if reservation is not None:
        ledger.units_release(reservation=reservation, by=by)


def appointment_units_follow(appointment: Appointment, *, by) -> None:
    """After a reschedule: keep the reservation if the new day is still inside its
    authorization (and week cap); otherwise move to another line, or refuse."""
    reservation = appointment.unit_reservation  # None, without a query, when there is none
    if reservation is None:
        if appointment.appointment_type.service_code is not None:
            appointment_units_reserve(appointment, by=by)
        return
    day = _service_date(appointment)
    # A type that has since lost its service code keeps the units the visit already holds.
    has_code = appointment.appointment_type.service_code is not None
    try:
        appointment.unit_reservation = ledger.units_move(
            reservation=reservation,
            service_date=day,
            units=_units_needed(appointment) if has_code else None,
            by=by,
        )
    except (AuthorizationNotValidError, AuthorizationWeeklyCapError):
        ledger.units_release(reservation=reservation, by=by)
        appointment.unit_reservation = None
        appointment.save(update_fields=["unit_reservation"])
        appointment_units_reserve(appointment, by=by)

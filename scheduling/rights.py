"""scheduling's part of a patient's data rights (practice/rights.py): their visits (with
practitioner, type, location and times in the clinic's zone), series and smart-booking jobs
in the export; on erasure, future visits are cancelled through the booking services (slots
and authorization units are released as for any cancel), queued smart-booking jobs are
cancelled, and the free text written about visits is blanked. Past visits keep their dates,
codes, statuses and units: billing and payers' audits need them."""

from django.db.models import Q

from practice.models import Patient
from practice.rights import ERASURE_CANCEL_REASON, ExportContext, PatientDataPart, Row

from .models import Appointment, AppointmentEvent, AppointmentSeries, SmartBookingJob
from .services import appointment_cancel
from .smart.job import smart_job_cancel

Status = Appointment.Status


def _appointment_rows(patient: Patient, context: ExportContext) -> list[Row]:
    visits = (
        Appointment.objects.filter(patient=patient)
        .select_related(
            "practitioner",
            "appointment_type__service_code",
            "location",
            "booked_by",
            "unit_reservation__line",
        )
        .order_by("start", "id")
    )
    rows = []
    for visit in visits:
        kind, place, units = visit.appointment_type, visit.location, visit.unit_reservation
        rows.append(
            {
                "id": visit.pk,
                "start": context.time(visit.start),
                "end": context.time(visit.end),
                "status": visit.status,
                "practitioner": {
                    "id": visit.practitioner_id,
                    "name": visit.practitioner.display_name,
                    "title": visit.practitioner.title,
                },
                "appointment_type": {
                    "id": kind.pk,
                    "name": kind.name,
                    "duration_minutes": kind.duration_minutes,
                    "service_code": kind.service_code.code if kind.service_code else None,
                },
                "location": {"id": place.pk, "name": place.name, "address": place.address}
                if place
                else None,
                "is_telehealth": visit.is_telehealth,
                "telehealth_url": visit.telehealth_url,
                "source": visit.source,
                "series": visit.series_id,
                "units": {
                    "authorization": units.line.authorization_id,
                    "units": units.units,
                    "state": units.state,
                    "service_date": units.service_date.isoformat(),
                }
                if units
                else None,
                "created_at": context.time(visit.created_at),
                "checked_in_at": context.time(visit.checked_in_at),
                "completed_at": context.time(visit.completed_at),
                "cancelled_at": context.time(visit.cancelled_at),
                "cancellation_reason": visit.cancellation_reason,
                "is_late_cancel": visit.is_late_cancel,
                "reschedule_count": visit.reschedule_count,
                "notes": visit.notes,
                "booked_by": visit.booked_by.email if visit.booked_by else None,
                "overbooked": visit.overbooked,
            }
        )
    return rows


def _series_rows(patient: Patient, context: ExportContext) -> list[Row]:
    series = (
        AppointmentSeries.objects.filter(patient=patient)
        .select_related("practitioner", "appointment_type")
        .order_by("created_at", "id")
    )
    return [
        {
            "id": one.pk,
            "practitioner": {"id": one.practitioner_id, "name": one.practitioner.display_name},
            "appointment_type": {"id": one.appointment_type_id, "name": one.appointment_type.name},
            "rrule": one.rrule,
            "first_start": context.time(one.first_start),
            "timezone": one.timezone,
            "created_at": context.time(one.created_at),
        }
        for one in series
    ]


def _job_rows(patient: Patient, context: ExportContext) -> list[Row]:
    jobs = SmartBookingJob.objects.filter(patient=patient).order_by("created_at", "id")
    return [
        {
            "id": str(job.pk),
            "status": job.status,
            "request": job.request,
            "created_at": context.time(job.created_at),
            "completed_at": context.time(job.completed_at),
            "error_message": job.error_message,
            "result": job.result,
            "reasons": job.reasons,
        }
        for job in jobs
    ]


def _erase(patient: Patient, *, by, now) -> dict[str, int]:
    """Cancel what is still to come, blank what was written about the visits."""
    future = Appointment.objects.filter(
        patient=patient, status__in=(Status.BOOKED, Status.CHECKED_IN), start__gt=now
    )
    cancelled = [
        appointment_cancel(appointment=visit, by=by, reason=ERASURE_CANCEL_REASON, now=now).pk
        for visit in future.order_by("start", "id")
    ]
    jobs = SmartBookingJob.objects.filter(patient=patient, status=SmartBookingJob.Status.QUEUED)
    jobs_cancelled = sum(smart_job_cancel(job=job) for job in jobs)
    visits = Appointment.objects.filter(patient=patient)
    visits.filter(~Q(notes="") | ~Q(cancellation_reason="")).exclude(pk__in=cancelled).update(
        notes="", cancellation_reason=""
    )
    visits.filter(pk__in=cancelled).exclude(notes="").update(notes="")
    # A cancel's event keeps the words given with it: they may be the patient's.
    for event in AppointmentEvent.objects.filter(
        appointment__patient=patient, data__has_key="reason"
    ):
        event.data.pop("reason")
        event.save(update_fields=["data"])
    return {
        "appointments_cancelled": len(cancelled),
        "appointments_kept": visits.count(),
        "smart_jobs_cancelled": jobs_cancelled,
    }


PARTS = (
    PatientDataPart(
        name="appointments",
        title="Appointments",
        export=_appointment_rows,
        columns=(
            ("start", "When"),
            ("practitioner.name", "Practitioner"),
            ("appointment_type.name", "Visit"),
            ("location.name", "Where"),
            ("status", "Status"),
        ),
        # The API's AppointmentSerializer.staff_only_fields
        staff_only=("notes", "booked_by", "overbooked"),
        erase=_erase,
    ),
    PatientDataPart(
        name="series",
        title="Recurring bookings",
        export=_series_rows,
        columns=(
            ("first_start", "First visit"),
            ("practitioner.name", "Practitioner"),
            ("rrule", "Rule"),
        ),
    ),
    PatientDataPart(
        name="smart_booking_jobs",
        title="Smart-booking requests",
        export=_job_rows,
        columns=(("created_at", "Asked"), ("status", "Status"), ("error_message", "Why not")),
    ),
)

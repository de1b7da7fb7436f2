"""A smart-booking job's life: written (`smart_job_create`), cancelled while queued, run, and
requeued when stuck.

`smart_job_create` writes the job and queues the task on commit. `smart_job_run` (called by the
Celery task) marks it running, scores every free slot of the eligible practitioners
(`scoring`), and books the best through `services.appointment_book` — the same exclusion
constraint and unit reservation as a direct booking — falling through to the next slot when
another booking wins the race. Booking and completion commit together, and appointments carry
the job id, so a re-run never books twice. Every change is published to the job's group as
`job_payload`, the JSON the API shows staff; the socket drops `JOB_STAFF_FIELDS` for a patient,
as the API's serializer does.
"""

import logging
import os
import socket
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Avg, F, Q
from django.utils import timezone

import usage
from authorizations import selectors as auth_selectors
from authorizations.errors import (
    AuthorizationExhaustedError,
    AuthorizationNotValidError,
    AuthorizationRequiredError,
    AuthorizationWeeklyCapError,
)
from clinic.errors import ApplicationError
from clinic.inputs import schedule_date_error
from clinic.tenancy import tenant_connection
from practice import formats
from practice.models import ClinicSettings, Patient, Practitioner
from realtime.groups import group_name, publish
from tenants.selectors import schemas_where

from .. import availability, services
from ..errors import SlotUnavailableError
from ..models import Appointment, AppointmentType, SmartBookingJob
from ..signals import smart_booking_finished
from .scoring import Candidate, Need, eligible_practitioners, score_slots, units_of

logger = logging.getLogger(__name__)
Status = SmartBookingJob.Status

# Starts of one job (the first and every re-run after a lost worker or a sweep's requeue).
MAX_RUNS = 5

AUTH_ERRORS = (
    AuthorizationExhaustedError,
    AuthorizationNotValidError,
    AuthorizationRequiredError,
    AuthorizationWeeklyCapError,
)


# Which worker process ran the job and how often it was restarted: the clinic's operations, of no
# use to the patient (and a host name is nobody's business outside the clinic's staff).
JOB_STAFF_FIELDS = ("worker_id", "retry_count")


def job_group(job_id, schema: str | None = None) -> str:
    return group_name("job", job_id, schema=schema)


def _datetime(moment: datetime | None) -> str | None:
    """A time as the API writes it (DRF's DateTimeField): ISO 8601 in the current zone, `Z` for
    UTC."""
    if not moment:
        return None
    text = timezone.localtime(moment).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def job_payload(job: SmartBookingJob, *, staff: bool) -> dict:
    """The job as the API (`SmartBookingJobSerializer`) and the websocket show it to staff
    (`staff`) or to the patient: one shape for both paths, the same JSON, built here without
    the API's serializer."""
    payload = {
        "job_id": str(job.pk),
        "status": str(job.status),
        "patient": job.patient_id,
        "request": job.request,
        "created_at": _datetime(job.created_at),
        "started_at": _datetime(job.started_at),
        "completed_at": _datetime(job.completed_at),
        "worker_id": str(job.worker_id),
        "retry_count": int(job.retry_count),
        "error_message": str(job.error_message),
        "result": job.result,
        "reasons": job.reasons,
        "nearest_options": job.nearest_options,
        "status_url": f"/api/v1/smart-bookings/{job.pk}/",
    }
    return payload if staff else for_patient(payload)


def for_patient(payload: dict) -> dict:
    """A job's JSON without `JOB_STAFF_FIELDS` (the order of the others kept)."""
    return {key: value for key, value in payload.items() if key not in JOB_STAFF_FIELDS}


def _publish(job: SmartBookingJob) -> None:
    payload = job_payload(job, staff=True)  # each socket trims it for its reader
    group = job_group(job.pk)
    # robust: the change is committed; a failed notice is logged, never the caller's error.
    # The frame is the job's API JSON as it is (integrators compare the two): no request id.
    transaction.on_commit(lambda: publish(group, payload, trace=False), robust=True)


def estimated_completion(*, now: datetime | None = None) -> datetime:
    """From the current queue depth and recent job times in this clinic, not a constant."""
    now = now or timezone.now()
    recent = SmartBookingJob.objects.filter(status=Status.COMPLETED, started_at__isnull=False)
    avg = recent.order_by("-completed_at")[:50].aggregate(
        took=Avg(F("completed_at") - F("created_at"))
    )["took"] or timedelta(milliseconds=300)
    depth = SmartBookingJob.objects.filter(status__in=(Status.QUEUED, Status.RUNNING)).count()
    workers = max(1, settings.SMART_BOOKING_WORKERS)
    return now + avg * (1 + depth / workers)


def smart_job_create(*, patient: Patient, request: dict, requested_by=None) -> SmartBookingJob:
    """Write the job (status queued) and queue its task once the row is committed. `request`
    is a checked `SmartRequest.to_job_request()`. An inactive patient is refused on `patient`
    (ValidationError: the API's 400, the patient pages' form error); nothing is written."""
    if not patient.is_active:
        raise ValidationError({"patient": ["This patient record is inactive."]})
    with transaction.atomic():
        job = SmartBookingJob.objects.create(
            patient=patient, request=request, requested_by=requested_by
        )
        job_id = str(job.pk)
        # robust: if the broker is down the job stays queued and the sweep queues it later;
        # the caller still gets its 202 for the committed job.
        transaction.on_commit(lambda: _queue(job_id), robust=True)
        transaction.on_commit(lambda: usage.count(usage.SMART_BOOKING_JOB), robust=True)
        _publish(job)
    return job


def _queue(job_id: str) -> None:
    from .tasks import run_smart_booking_task

    run_smart_booking_task.apply_async((job_id,), queue=settings.SMART_BOOKING_QUEUE)


def smart_job_cancel(*, job: SmartBookingJob) -> bool:
    """Cancel a job that has not started. One conditional UPDATE: never races the worker."""
    with transaction.atomic():
        changed = SmartBookingJob.objects.filter(pk=job.pk, status=Status.QUEUED).update(
            status=Status.CANCELLED, completed_at=timezone.now()
        )
        if changed:
            job.refresh_from_db()
            _publish(job)
    return bool(changed)


# --- Running a job -----------------------------------------------------------------------------


class NothingFound(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def smart_job_start(job_id) -> SmartBookingJob | None:
    """Mark the job running (committed and published), or None when there is nothing to do:
    the job is gone, final, or has been started `MAX_RUNS` times already (it then ends
    `failed`: a job that kills its worker every time must not be requeued for ever)."""
    with transaction.atomic():
        job = SmartBookingJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.is_final:
            return None
        if job.status == Status.RUNNING:
            if job.retry_count + 1 >= MAX_RUNS:
                job.status = Status.FAILED
                job.completed_at = timezone.now()
                job.error_message = f"The search did not finish after {MAX_RUNS} attempts."
                job.save(update_fields=["status", "completed_at", "error_message"])
                _publish(job)
                return None
            job.retry_count += 1  # a re-run after a lost worker or a requeue
        job.status = Status.RUNNING
        job.started_at = timezone.now()
        job.worker_id = _worker_id()
        job.save(update_fields=["status", "started_at", "worker_id", "retry_count"])
        _publish(job)
    return job


def smart_job_run(job_id) -> str:
    """Run one job to a final state. Safe to call again for the same job."""
    job = smart_job_start(job_id)
    if job is None:
        return "skipped"
    delay = settings.SMART_BOOKING_STEP_DELAY
    if delay:
        time.sleep(delay)  # test hook: widens the window in which a worker can be killed
    try:
        with transaction.atomic():
            locked = SmartBookingJob.objects.select_for_update().get(pk=job.pk)
            if locked.is_final:
                return "skipped"
            already = list(Appointment.objects.filter(smart_job_id=job.pk).order_by("start"))
            if already:
                _complete(locked, already, ["Booked earlier by this same request."])
                return "completed"
            if never := _window_error(locked.request):
                raise NothingFound(never)
            need = Need.from_request(locked.patient, locked.request)
            booked, reasons = _book_best(locked, need)
            _complete(locked, booked, reasons)
        return "completed"
    except NothingFound as nothing:
        _fail(job.pk, nothing.message, need_for_options=job)
        return "failed"
    except AUTH_ERRORS as error:
        _fail(job.pk, f"Your insurance authorization does not allow this booking: {error.detail}",
              need_for_options=job)  # fmt: skip
        return "failed"
    except ApplicationError as error:  # any other rule that refuses the booking
        _fail(job.pk, error.detail, need_for_options=job)
        return "failed"


def _window_error(request: dict) -> str:
    """Why the request's window can never be booked ("" when it can): a day far from today
    (written before the window was checked on the way in; year 9999 overflows)."""
    for field in ("earliest_date", "latest_date"):
        try:
            day = date.fromisoformat(request.get(field) or "")
        except (TypeError, ValueError):
            return f"The request has no valid {field}."
        if schedule_date_error(day):
            return f"The search window ({day.isoformat()}) is too far from today to book."
    return ""


def authorization_need_of(need: Need) -> auth_selectors.AuthorizationNeed | None:
    """What the patient's authorizations say about the visit type, where the clinic refuses
    visits without one (None: nothing to check)."""
    kind = need.appointment_type
    code = kind.service_code
    if code is None or not code.requires_authorization:
        return None
    if ClinicSettings.load().authorization_policy != ClinicSettings.AuthorizationPolicy.REFUSE:
        return None
    return auth_selectors.authorization_need(
        patient=need.patient,
        service_code=code,
        units=units_of(kind),
        today=timezone.localdate(),
    )


def _authorization_blocks(need: Need) -> str:
    """The true reason no slot can be booked on the patient's authorizations ("" when some
    can): none at all (and whether a request is open), or too few units left."""
    covered = authorization_need_of(need)
    if covered is None or not covered.blocks_booking:
        return ""
    name = need.appointment_type.name
    if covered.state == "exhausted":
        line = max(covered.lines, key=lambda x: x.units_remaining)
        return (
            f"Your insurance authorization {line.authorization.number} has "
            f"{line.units_remaining} unit(s) left and one {name} needs {covered.units}. "
            "The front desk can ask your insurer to renew it."
        )
    request = covered.request
    if request is not None and request.status == request.Status.PENDING:
        return (
            f"{name} needs an authorization from your insurer, and you have none yet. Your "
            f"request of {formats.message_date(request.requested_at)} is with the clinic: you "
            "can book once "
            "it is approved."
        )
    return (
        f"{name} needs an authorization from your insurer, and you have none yet. Request an "
        "assessment / authorization from the practitioner's page (or call the clinic): you "
        "can book once it is approved."
    )


def _book_best(job: SmartBookingJob, need: Need) -> tuple[list[Appointment], list[str]]:
    if blocked := _authorization_blocks(need):
        raise NothingFound(blocked)
    practitioners = eligible_practitioners(need)
    if not practitioners:
        raise NothingFound(
            "No practitioner matches this request (type, language, location or new-patient "
            "availability). Try widening it."
        )
    candidates = score_slots(need, practitioners)
    if need.sessions_per_week and need.weeks:
        return _book_series(job, need, candidates, weeks=need.weeks)
    for candidate in candidates:
        try:
            appointment = _book(job, need, candidate)
        except SlotUnavailableError:
            continue  # another booking won the race: take the next best
        reasons = _summary(candidate) + candidate.reasons
        return [appointment], reasons
    if need.blocked_by_authorization and not candidates:
        raise NothingFound(
            "Your insurance authorization does not cover any free time in the dates asked for "
            "(its dates, or the units left on those days). Try other dates, or ask the front "
            "desk to extend it."
        )
    raise NothingFound(
        f"No free {need.appointment_type.name} slot between "
        f"{formats.message_date(need.earliest, style='daynum', zone=need.tz)} and "
        f"{formats.message_date(need.latest - timedelta(days=1), zone=need.tz)} matches this "
        "request."
    )


def _summary(candidate: Candidate) -> list[str]:
    local = candidate.start.astimezone(ZoneInfo(candidate.practitioner.timezone))
    return [
        f"Booked with {candidate.practitioner.display_name} on "
        f"{formats.message_date(local, style='long', zone=local.tzinfo)} at "
        f"{formats.message_time(local, zone=local.tzinfo)} "
        "(the best match for your request)."
    ]


def _book(job: SmartBookingJob, need: Need, candidate: Candidate) -> Appointment:
    return services.appointment_book(
        patient=need.patient,
        practitioner=candidate.practitioner,
        appointment_type=need.appointment_type,
        start=candidate.start,
        booked_by=job.requested_by,
        source=Appointment.Source.SMART,
        telehealth=need.telehealth,
        smart_job_id=job.pk,
    )


def _book_series(job, need: Need, candidates: list[Candidate], *, weeks: int):
    """N sessions a week for W weeks with one practitioner, all or nothing."""
    by_practitioner: dict[int, list[Candidate]] = {}
    order: list[Practitioner] = []
    for c in candidates:
        if c.practitioner.pk not in by_practitioner:
            order.append(c.practitioner)
        by_practitioner.setdefault(c.practitioner.pk, []).append(c)
    first_week = need.earliest.astimezone(need.tz).date()
    last_problem = "no practitioner has enough free slots in every week"
    for practitioner in order:
        pool = by_practitioner[practitioner.pk]
        by_week: list[list[Candidate]] = [[] for _ in range(weeks)]
        for c in pool:
            index = (c.start.astimezone(need.tz).date() - first_week).days // 7
            if 0 <= index < weeks:
                by_week[index].append(c)
        try:
            with transaction.atomic():
                booked = []
                for week in by_week:
                    booked += _book_week(job, need, week)
                reasons = [
                    f"{need.sessions_per_week} sessions a week for {need.weeks} weeks with "
                    f"{practitioner.display_name}, {len(booked)} visits in all.",
                    *dict.fromkeys(r for c in pool[:1] for r in c.reasons),
                ]
                return booked, reasons
        except NothingFound as problem:
            last_problem = problem.message
            continue
    raise NothingFound(f"Could not book the whole series: {last_problem}.")


def _book_week(job, need: Need, week: list[Candidate]) -> list[Appointment]:
    booked, days = [], set()
    for c in week:  # already best first
        day = c.start.astimezone(need.tz).date()
        if day in days:
            continue
        try:
            booked.append(_book(job, need, c))
            days.add(day)
        except SlotUnavailableError:
            continue
        if len(booked) == need.sessions_per_week:
            return booked
    raise NothingFound(f"a week has only {len(booked)} of {need.sessions_per_week} sessions free")


def _result(appointments: list[Appointment]) -> dict:
    return {
        "appointments": [
            {
                "id": a.pk,
                "practitioner": a.practitioner_id,
                "practitioner_name": a.practitioner.display_name,
                "start": a.start.isoformat(),
                "end": a.end.isoformat(),
                "location": a.location_id,
                "telehealth_url": a.telehealth_url,
            }
            for a in appointments
        ]
    }


def _complete(job: SmartBookingJob, appointments: list[Appointment], reasons: list[str]) -> None:
    job.status = Status.COMPLETED
    job.completed_at = timezone.now()
    job.result = _result(appointments)
    job.reasons = list(dict.fromkeys(reasons))[:8]
    job.error_message = ""
    job.save(update_fields=["status", "completed_at", "result", "reasons", "error_message"])
    smart_booking_finished.send(sender=SmartBookingJob, job=job)
    _publish(job)


def _fail(job_id, message: str, *, need_for_options: SmartBookingJob) -> None:
    with transaction.atomic():
        job = SmartBookingJob.objects.select_for_update().get(pk=job_id)
        if job.is_final:
            return
        job.nearest_options = _nearest_options(job)
        job.status = Status.FAILED
        job.completed_at = timezone.now()  # once the options are found: the job ends here
        job.error_message = message
        job.save(update_fields=["status", "completed_at", "error_message", "nearest_options"])
        smart_booking_finished.send(sender=SmartBookingJob, job=job)
        _publish(job)


def _nearest_options(job: SmartBookingJob) -> list[dict]:
    """The first free slots outside the request: any preference dropped, window widened."""
    if _window_error(job.request):
        return []
    try:
        need = Need.from_request(job.patient, job.request)
    except (KeyError, ValueError, AppointmentType.DoesNotExist):
        return []
    # Never offer times that would fail the same way: only days the patient's authorization
    # covers with a visit's units (searched from its first day), and none when it covers none.
    covered = authorization_need_of(need)
    if covered is not None and covered.blocks_booking:
        return []
    start = timezone.now()
    if covered is not None and covered.lines:
        first_day = min(line.authorization.start_date for line in covered.lines)
        start = max(start, datetime.combine(first_day, datetime.min.time(), need.tz))
    practitioners = availability.practitioners_offering(
        appointment_type=need.appointment_type, specialty=need.specialty,
        practitioner_ids=need.practitioner_ids,
    )  # fmt: skip
    results = availability.availability(
        appointment_type=need.appointment_type,
        start=start,
        end=max(need.latest, start) + timedelta(days=30),
        practitioner_ids=list(practitioners.values_list("pk", flat=True)[:50]),
        limit_per_practitioner=3 if covered is None else 20,
    )
    zones = {r.practitioner.pk: ZoneInfo(r.practitioner.timezone) for r in results}
    slots = sorted(
        (
            s
            for r in results
            for s in r.slots
            if covered is None
            or covered.covers(s.start.astimezone(zones[s.practitioner_id]).date(), covered.units)
        ),
        key=lambda s: s.start,
    )[:5]
    names = {r.practitioner.pk: r.practitioner.display_name for r in results}
    return [
        {
            "practitioner": s.practitioner_id,
            "practitioner_name": names[s.practitioner_id],
            "start": s.start.isoformat(),
            "end": s.end.isoformat(),
        }
        for s in slots
    ]


def clinics_with_stuck_jobs(
    schemas: list[str], *, queued_after: timedelta, running_after: timedelta
) -> list[str]:
    """The schemas, of those given, holding a job `smart_jobs_sweep` would requeue: one query
    per 200 clinics, so a sweep of every clinic every 30 s costs milliseconds (a task per
    clinic kept both worker processes busy for a second each time with 22 clinics)."""
    now = timezone.now()
    table = SmartBookingJob._meta.db_table
    return schemas_where(
        schemas,
        table=table,
        sql=f"SELECT 1 FROM {{schema}}.{table} "
        "WHERE (status = %s AND created_at < %s) OR (status = %s AND started_at < %s)",
        params=[Status.QUEUED, now - queued_after, Status.RUNNING, now - running_after],
    )


def smart_jobs_next_due(*, queued_after: timedelta, running_after: timedelta) -> tuple[str, list]:
    """When `smart_jobs_sweep` could next find a stuck job in a clinic, as SQL and its
    parameters for tenants.services.work_due_settle."""
    table = f"{{schema}}.{SmartBookingJob._meta.db_table}"
    return (
        f"SELECT LEAST((SELECT min(created_at) FROM {table} WHERE status = %s) + %s, "  # noqa: S608
        f"(SELECT min(started_at) FROM {table} WHERE status = %s) + %s)",
        [Status.QUEUED, queued_after, Status.RUNNING, running_after],
    )


def smart_jobs_sweep(*, queued_after: timedelta, running_after: timedelta) -> list[str]:
    """Requeue jobs stuck in `queued` or `running` (a lost message, a killed worker). The task
    is idempotent on the job id, so a job that was merely slow is not booked twice."""
    now = timezone.now()
    stuck = SmartBookingJob.objects.filter(
        Q(status=Status.QUEUED, created_at__lt=now - queued_after)
        | Q(status=Status.RUNNING, started_at__lt=now - running_after)
    ).values_list("pk", flat=True)
    ids = [str(pk) for pk in stuck[:500]]
    for job_id in ids:
        _queue(job_id)
    if ids:
        logger.warning(
            "requeued %d stuck smart-booking job(s) in %s", len(ids), tenant_connection.schema_name
        )
    return ids

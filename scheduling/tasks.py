from datetime import timedelta

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django_tenants.utils import tenant_context
from kombu.exceptions import OperationalError as BrokerError

from clinic.celery import app
from tenants.selectors import clinic_list

from . import smart

TRANSIENT = (OperationalError, InterfaceError, BrokerError, redis.RedisError)


@app.task(
    name="scheduling.run_smart_booking",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=0.5,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=8,
)
def run_smart_booking_task(job_id: str) -> str:
    """Run one smart-booking job in its clinic. Idempotent on the job id; transient errors
    (database restart, Redis blip) retry with backoff and count in the job's retry_count."""
    # A re-run (retry, redelivery after a lost worker, sweep) finds the job `running` and
    # counts it in retry_count; appointments carry the job id, so it never books twice.
    return smart.smart_job_run(job_id)


@app.task(name="scheduling.sweep_smart_bookings", public_ok=True, ignore_result=True)
def sweep_smart_bookings_task() -> int:
    """Beat: requeue stuck smart-booking jobs in every active clinic. One query finds the
    clinics that have any; only those are visited. Returns the number of jobs requeued."""
    stuck = timedelta(seconds=settings.SMART_BOOKING_STUCK_SECONDS)
    clinics = {clinic.schema_name: clinic for clinic in clinic_list() if clinic.is_active}
    requeued = 0
    for schema in smart.clinics_with_stuck_jobs(
        list(clinics), queued_after=stuck, running_after=stuck
    ):
        with tenant_context(clinics[schema]):
            requeued += len(smart.smart_jobs_sweep(queued_after=stuck, running_after=stuck))
    return requeued


@app.task(name="scheduling.refresh_next_available", ignore_result=True)
def refresh_next_available_task(
    practitioner_ids: list[int] | None = None, stale: bool = False
) -> int:
    """After a schedule change (these practitioners, or everyone), or from the beat (`stale`:
    the rows the clock has overtaken): the search's next_available."""
    from .services import next_available_refresh, next_available_refresh_stale

    if stale:
        return next_available_refresh_stale()
    return next_available_refresh(practitioner_ids=practitioner_ids)


@app.task(name="scheduling.refresh_next_available_everywhere", public_ok=True)
def refresh_next_available_everywhere_task() -> int:
    """Beat: time moves on (minimum notice, the search window's end), so refresh the rows it
    overtakes, in the clinics that have any (one query finds them). Returns clinics queued."""
    from .services import clinics_with_stale_next_available

    clinics = {clinic.schema_name: clinic for clinic in clinic_list() if clinic.is_active}
    stale = clinics_with_stale_next_available(list(clinics))
    for schema in stale:
        with tenant_context(clinics[schema]):
            refresh_next_available_task.delay(stale=True)
    return len(stale)

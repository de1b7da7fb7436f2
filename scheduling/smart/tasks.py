"""The smart-booking tasks: run one job (idempotent on its id), and the beat's sweep of stuck
jobs."""

from datetime import timedelta

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django_tenants.utils import tenant_context
from kombu.exceptions import OperationalError as BrokerError

from clinic import metrics
from clinic.celery import app
from tenants.selectors import clinics_with_work_due
from tenants.services import work_due_settle

from .job import clinics_with_stuck_jobs, smart_job_run, smart_jobs_next_due, smart_jobs_sweep

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
    return metrics.smart_booking_outcome(smart_job_run(job_id))


@app.task(name="scheduling.sweep_smart_bookings", public_ok=True, ignore_result=True)
def sweep_smart_bookings_task() -> int:
    """Beat: requeue stuck smart-booking jobs in every active clinic. Only the clinics the
    index of work due names are asked (tenants.models.WorkDue), and settled afterwards.
    Returns the number of jobs requeued."""
    stuck = timedelta(seconds=settings.SMART_BOOKING_STUCK_SECONDS)
    clinics = {c.schema_name: c for c in clinics_with_work_due("smart_bookings")}  # models.WorkDue
    due = list(clinics)
    requeued = 0
    for schema in clinics_with_stuck_jobs(due, queued_after=stuck, running_after=stuck):
        with tenant_context(clinics[schema]):
            requeued += len(smart_jobs_sweep(queued_after=stuck, running_after=stuck))
    sql, params = smart_jobs_next_due(queued_after=stuck, running_after=stuck)
    work_due_settle("smart_bookings", due, sql=sql, params=params)
    return requeued

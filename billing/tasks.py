"""billing's Celery tasks: the nightly charge run in every clinic (and one clinic's, which the
biller's "Create charges" queues too)."""

from django_tenants.utils import tenant_context

from clinic.celery import app
from tenants.selectors import clinic_list

from .charges import charges_create_for_completed


@app.task(name="billing.charge_completed_visits")
def charge_completed_visits_task(appointment_ids: list[int] | None = None) -> dict:
    """One clinic: charge its completed visits that can be (or those of `appointment_ids`).
    Safe to retry: a charged visit is skipped, the unique index holds one live charge."""
    result = charges_create_for_completed(appointment_ids=appointment_ids)
    return {"created": result.created, "skipped": result.skipped, "failed": result.failed}


@app.task(name="billing.nightly_charges", public_ok=True)
def nightly_charge_completed_visits_task() -> int:
    """Beat, nightly: queue the charge run in every active clinic (each in its schema)."""
    queued = 0
    for clinic in clinic_list():
        if clinic.is_active:
            with tenant_context(clinic):
                charge_completed_visits_task.delay()
            queued += 1
    return queued

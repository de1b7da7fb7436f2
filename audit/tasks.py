from django_tenants.utils import tenant_context

from clinic.celery import app
from tenants.selectors import clinic_list

from .services import events_purge


@app.task(name="audit.purge")
def purge_task() -> int:
    """One clinic: remove its audit events older than the retention."""
    return events_purge()


@app.task(name="audit.purge_everywhere", public_ok=True)
def purge_everywhere_task() -> int:
    """Beat, nightly: queue the retention purge in every clinic, suspended ones too (their
    events age as well); each runs in its schema."""
    clinics = clinic_list()
    for clinic in clinics:
        with tenant_context(clinic):
            purge_task.delay()
    return len(clinics)

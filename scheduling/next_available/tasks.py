"""The next-available tasks: refresh some practitioners' rows after a change, and the beat's
refresh of the rows the clock overtakes, in the clinics that have any."""

from django_tenants.utils import tenant_context

from clinic.celery import app
from tenants.selectors import clinics_with_work_due
from tenants.services import work_due_settle

from .refresh import (
    clinics_with_stale_next_available,
    next_available_next_due,
    next_available_refresh,
    next_available_refresh_stale,
)


@app.task(name="scheduling.refresh_next_available", ignore_result=True)
def refresh_next_available_task(
    practitioner_ids: list[int] | None = None, stale: bool = False
) -> int:
    """After a schedule change (these practitioners, or everyone), or from the beat (`stale`:
    the rows the clock has overtaken): the search's next_available."""
    if stale:
        return next_available_refresh_stale()
    return next_available_refresh(practitioner_ids=practitioner_ids)


@app.task(name="scheduling.refresh_next_available_everywhere", public_ok=True)
def refresh_next_available_everywhere_task() -> int:
    """Beat: time moves on (minimum notice, the search window's end), so refresh the rows it
    overtakes, in the clinics that have any. Only the clinics the index of work due names are
    asked (tenants.models.WorkDue: their rows were due to go stale, or were written since), and
    settled afterwards. Returns clinics queued."""
    clinics = {c.schema_name: c for c in clinics_with_work_due("next_available")}
    due = list(clinics)
    stale = clinics_with_stale_next_available(due)
    for schema in stale:
        with tenant_context(clinics[schema]):
            refresh_next_available_task.delay(stale=True)
    sql, params = next_available_next_due()
    work_due_settle("next_available", due, sql=sql, params=params)
    return len(stale)

"""The clinics' tasks: keeping the warm pool of template copies full."""

from django_tenants.utils import schema_context

from clinic.celery import app

from .services import schema_pool_refill


@app.task(name="tenants.schema_pool_refill", ignore_result=True, public_ok=True)
def schema_pool_refill_task() -> int:
    """After a provisioning took a copy, and from the beat: clone the template until the pool
    is full again (`CLINIC_SCHEMA_POOL_SIZE`). Returns the copies made."""
    with schema_context("public"):
        made, _dropped = schema_pool_refill()
    return made

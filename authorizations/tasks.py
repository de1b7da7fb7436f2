from django_tenants.utils import tenant_context

from clinic.celery import app
from clinic.tenancy import tenant_connection
from tenants.selectors import clinic_list

from .services import authorization_alerts_send


@app.task(name="authorizations.send_alerts")
def send_authorization_alerts_task() -> int:
    """One clinic: refresh statuses and email the front desk the authorizations that need
    attention."""
    return authorization_alerts_send(clinic_name=tenant_connection.tenant.name)


@app.task(name="authorizations.daily_alerts", public_ok=True)
def daily_authorization_alerts_task() -> int:
    """Beat, daily: queue the alert digest in every active clinic (each runs in its schema)."""
    queued = 0
    for clinic in clinic_list():
        if clinic.is_active:
            with tenant_context(clinic):
                send_authorization_alerts_task.delay()
            queued += 1
    return queued

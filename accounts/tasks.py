from clinic.celery import app

from .roles import roles_sync


@app.task(name="accounts.sync_roles")
def sync_roles_task() -> dict[str, int]:
    """Re-create the clinic's role groups and permissions (after an upgrade adds some)."""
    return roles_sync()

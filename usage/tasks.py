from clinic.celery import app

from .rollup import usage_rollup


@app.task(name="usage.rollup", public_ok=True)
def usage_rollup_task() -> int:
    """Beat, every minute: add the usage counted in Redis into PostgreSQL (platform-wide)."""
    return usage_rollup()

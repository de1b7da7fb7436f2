"""The Celery app. Tasks run in the schema of the clinic that queued them.

tenant-schemas-celery stamps the current schema into each message's headers and switches the
worker's connection to it before the task runs. A task that arrives without a clinic (queued
from `public`) is refused unless it is declared `public_ok` (platform-wide fan-out tasks).
"""

import os

from django.db import connection
from tenant_schemas_celery.app import CeleryApp
from tenant_schemas_celery.task import TenantTask

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")


class PublicSchemaError(RuntimeError):
    pass


class ClinicTask(TenantTask):
    abstract = True
    public_ok = False

    def __call__(self, *args, **kwargs):
        if not self.public_ok and connection.schema_name == "public":
            raise PublicSchemaError(
                f"{self.name} must run inside a clinic; it was queued outside one."
            )
        return super().__call__(*args, **kwargs)


class ClinicCeleryApp(CeleryApp):
    task_cls = "clinic.celery:ClinicTask"


app = ClinicCeleryApp("clinic")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

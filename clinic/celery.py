"""The Celery app. Tasks run in the schema of the clinic that queued them.

tenant-schemas-celery stamps the current schema into each message's headers and switches the
worker's connection to it before the task runs. A task that arrives without a clinic (queued
from `public`) is refused unless it is declared `public_ok` (platform-wide fan-out tasks).
"""

import contextvars
import os
import time

from celery.signals import task_postrun, task_prerun, worker_process_shutdown
from django.db import connection
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from tenant_schemas_celery.app import CeleryApp, get_schema_name_from_task
from tenant_schemas_celery.task import TenantTask

from clinic import metrics
from clinic.requestlog import current_request_id, tasks_log

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")


class _RedisQoS(kombu_redis.QoS):
    """kombu's Redis QoS, except that an ack or reject Redis does not answer (hung, restarting)
    still frees the worker's prefetch slot. kombu frees it only after the round trip succeeds,
    so with prefetch 1 one failed ack stopped the worker fetching for good: a 10 s Redis hang
    left every later task queued (tests/test_faults.py). The message stays in Redis's unacked
    index and is delivered again after the visibility timeout; every task is idempotent on the
    row it works on (smart-booking job, notification, webhook delivery)."""

    def ack(self, delivery_tag):
        try:
            super().ack(delivery_tag)
        except self.channel.connection_errors:
            virtual.QoS.ack(self, delivery_tag)
            raise

    def reject(self, delivery_tag, requeue=False):
        try:
            super().reject(delivery_tag, requeue=requeue)
        except self.channel.connection_errors:
            virtual.QoS.ack(self, delivery_tag)
            raise


class _RedisChannel(kombu_redis.Channel):
    QoS = _RedisQoS


class RedisTransport(kombu_redis.Transport):
    """The broker transport (settings.CELERY_BROKER_TRANSPORT): kombu's Redis with `_RedisQoS`."""

    Channel = _RedisChannel


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

    def apply_async(self, *args, **kwargs):
        """Queue through the Redis breaker (clinic.resilience): while Redis does not answer,
        a publish fails within its budget with RedisUnavailableError instead of waiting.
        Callers queue from `on_commit(..., robust=True)`, and each kind of queued row has a
        sweep that queues it again."""
        from clinic.resilience import redis_call

        return redis_call("broker", super().apply_async, *args, raising=True, **kwargs)


class ClinicCeleryApp(CeleryApp):
    task_cls = "clinic.celery:ClinicTask"

    def send_task(self, name, args=None, kwargs=None, **options):
        """Every message carries the request id of the request that queued it (if any), so
        the worker's log lines of the task name it (clinic.requestlog)."""
        request_id = current_request_id.get()
        if request_id:
            options["headers"] = {**(options.get("headers") or {}), "request_id": request_id}
        return super().send_task(name, args, kwargs, **options)


_task_started: dict[str, tuple[float, contextvars.Token[str]]] = {}


@task_prerun.connect
def _task_context(task_id=None, task=None, **kwargs) -> None:
    headers = getattr(task.request, "headers", None) or {}
    request_id = headers.get("request_id") or task.request.get("request_id") or ""
    _task_started[task_id] = (time.perf_counter(), current_request_id.set(request_id))


@task_postrun.connect
def _task_log(task_id=None, task=None, state=None, **kwargs) -> None:
    started, token = _task_started.pop(task_id, (None, None))
    metrics.task_finished(task.name, state, time.perf_counter() - started if started else None)
    tasks_log.info(
        "task",
        extra={
            "task": task.name,
            "task_id": task_id,
            "clinic": get_schema_name_from_task(task, kwargs),
            "state": state,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started else None,
        },
    )
    if token is not None:
        current_request_id.reset(token)


@worker_process_shutdown.connect
def _counts_written(**kwargs) -> None:
    """A worker process's last counts (clinic.counting), before it exits."""
    from clinic import counting  # reads settings: not while this module loads (clinic/__init__)

    counting.flush()


app = ClinicCeleryApp("clinic")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

"""The audit trail's one table, append-only.

Each clinic's events live in its own schema (a tenant app). PostgreSQL refuses every UPDATE and
every DELETE of a row (the trigger of migration 0001), but for the retention purge's, which may
remove only rows older than the retention cutoff it computes itself (`audit.purge`).

No foreign key constraint points out of the table: deleting a user, a content type or a
patient must never try to cascade into (or be blocked by) the trail, and an event outlives what
it names. Values of patient data never enter it: updates list the names of the fields changed.
"""

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.contrib.postgres.fields import ArrayField
from django.db import models


class AuditEvent(models.Model):
    class Action(models.TextChoices):
        READ = "read"
        CREATE = "create"
        UPDATE = "update"
        DELETE = "delete"
        EXPORT = "export"

    occurred_at = models.DateTimeField()
    # The clinic is implicit (the schema holds the row); kept for exports that leave it.
    schema_name = models.CharField(max_length=63)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    # An API client acting without a user, or on a user's behalf (issue 20 adds API clients).
    client = models.CharField(max_length=100, blank=True)
    patient_id = models.BigIntegerField(null=True, blank=True)
    content_type = models.ForeignKey(
        ContentType,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    object_id = models.CharField(max_length=64, blank=True)
    # What was touched when it is no model row, or rows at once ("calendar feed", "list").
    object_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=8, choices=Action.choices)
    fields = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    method = models.CharField(max_length=8, blank=True)
    path = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        default_permissions = ("view",)
        permissions = [("export_auditevent", "Can export audit events")]
        indexes = [
            models.Index(fields=["patient_id", "-occurred_at"], name="audit_event_patient"),
            models.Index(fields=["user", "-occurred_at"], name="audit_event_user"),
            models.Index(fields=["occurred_at"], name="audit_event_time"),
            models.Index(fields=["request_id"], name="audit_event_request"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.object_label or self.content_type_id} #{self.object_id}"

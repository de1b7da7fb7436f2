"""Usage rolled up from Redis, in the public schema: one row per clinic, day, kind, subject and
group. Shared (public) so the platform reads every clinic's in one query; a clinic reads its
own through `/api/v1/usage/` (filtered by its schema). No foreign key to the clinic: rows of a
removed clinic stay as the record of what it used."""

from django.db import models


class UsageDay(models.Model):
    schema_name = models.CharField(max_length=63)
    day = models.DateField()
    kind = models.CharField(max_length=32)
    # Who: `client:<client id>` for an API client, `user:<kind>` (staff, patient, anonymous).
    subject = models.CharField(max_length=100, blank=True)
    # The API's endpoint group (`appointments`, `patients`...); empty for other kinds.
    group = models.CharField(max_length=100, blank=True)
    count = models.BigIntegerField()

    class Meta:
        ordering = ["-day", "schema_name", "kind", "subject", "group"]
        constraints = [
            models.UniqueConstraint(
                fields=["schema_name", "day", "kind", "subject", "group"],
                name="usage_day_unique",
            ),
            models.CheckConstraint(condition=models.Q(count__gte=0), name="usage_day_count_gte_0"),
        ]
        indexes = [models.Index(fields=["schema_name", "-day"], name="usage_day_clinic")]

    def __str__(self) -> str:
        return (
            f"{self.schema_name} {self.day} {self.kind} {self.subject} {self.group}: {self.count}"
        )


class UsageRollup(models.Model):
    """A Redis hash already added into UsageDay (its renamed key): a rollup that died after
    its commit and before deleting the hash finds it here and does not add it twice."""

    key = models.CharField(max_length=200, unique=True)
    rolled_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key


class ClinicPlan(models.Model):
    """A clinic's plan, set by the platform: how many API requests per minute all its API
    clients may make together (each client also has its own limit)."""

    schema_name = models.CharField(max_length=63, unique=True)
    api_requests_per_minute = models.PositiveIntegerField()

    class Meta:
        ordering = ["schema_name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(api_requests_per_minute__gte=1), name="clinic_plan_rate_gte_1"
            )
        ]

    def __str__(self) -> str:
        return f"{self.schema_name}: {self.api_requests_per_minute}/min"

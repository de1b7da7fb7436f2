"""API clients of a clinic: integrators' servers that sign in with a client id and secret
(OAuth 2.0 client credentials) instead of a person's email and password."""

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from clinic.permissions import API_SCOPES


class ApiClient(models.Model):
    """A client and the scopes it may ask for. Its secret is kept hashed (Django's password
    hashers); after a rotation the previous one keeps working until `previous_valid_until`.
    The client acts through a user of its own (`user`: no password, no role, no admin), so
    what it books or changes is attributed to it like a person's; its permissions are its
    scopes (clinic.permissions.scope_permissions), never that user's roles."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client_id = models.CharField(max_length=64, unique=True, editable=False)
    name = models.CharField(max_length=100)
    scopes = ArrayField(models.CharField(max_length=40), help_text="What the client may do.")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_client"
    )
    secret_hash = models.CharField(max_length=256, editable=False)
    previous_secret_hash = models.CharField(max_length=256, blank=True, editable=False)
    previous_valid_until = models.DateTimeField(null=True, blank=True)
    # Requests per minute (RateLimit-*); none: the deployment's API_CLIENT_RATE_PER_MINUTE.
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]
        permissions = [("usage_apiclient", "Can read the clinic's usage and limits")]
        constraints = [
            models.CheckConstraint(
                condition=Q(scopes__contained_by=list(API_SCOPES)) & Q(scopes__len__gte=1),
                name="api_client_scopes_known",
            ),
            models.CheckConstraint(
                condition=Q(previous_secret_hash="", previous_valid_until__isnull=True)
                | (~Q(previous_secret_hash="") & Q(previous_valid_until__isnull=False)),
                name="api_client_previous_secret_has_an_end",
            ),
            models.CheckConstraint(
                condition=Q(rate_limit_per_minute__isnull=True) | Q(rate_limit_per_minute__gte=1),
                name="api_client_rate_limit_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

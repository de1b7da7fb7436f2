"""The notification log, read-only: staff per their grants, a patient their own messages."""

from django.db.models import QuerySet
from django_filters import rest_framework as filters
from rest_framework import mixins, viewsets

from audit.mixins import AuditedAPIMixin
from clinic.permissions import required_permission
from practice.selectors import rows_in_scope

from .. import selectors
from ..models import Notification
from .serializers import NotificationSerializer


class NotificationFilter(filters.FilterSet):
    class Meta:
        model = Notification
        fields = ["appointment", "patient", "kind", "channel", "status"]


class NotificationViewSet(
    AuditedAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Messages sent (or due, skipped, failed) about visits: `?appointment=` for one visit's.
    A practitioner reads those of the visits in their column, a patient their own."""

    permission_model = "notifications.notification"
    self_service_actions = ("list", "retrieve", "metadata")
    serializer_class = NotificationSerializer
    filterset_class = NotificationFilter
    ordering_fields = ["due_at", "created_at"]
    ordering = ["-due_at", "-id"]

    def get_queryset(self) -> QuerySet[Notification]:
        permission = required_permission(self.request, self) or "notifications.view_notification"
        return rows_in_scope(
            selectors.notification_list(),
            user=self.request.user,
            permission=permission,
            practitioner="appointment__practitioner",
            patient="patient",
        )

"""Reads of the notification log, shared by the API and the admin."""

from django.db.models import QuerySet

from .models import Notification


def notification_list() -> QuerySet[Notification]:
    return Notification.objects.select_related("rule").order_by("-due_at", "-pk")

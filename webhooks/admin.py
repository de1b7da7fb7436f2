"""The clinic admin's pages: subscriptions (the secret shown once, when made) and the delivery
log, with a replay action."""

from typing import ClassVar

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from . import services
from .models import WebhookDelivery, WebhookSubscription
from .services import WebhookUrlRefusedError


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    list_display = ("url", "is_active", "consecutive_failures", "disabled_at", "created_at")
    list_filter = ("is_active",)
    search_fields = ("url", "description")
    readonly_fields = ("consecutive_failures", "disabled_at", "disabled_reason", "created_at")
    fields = ("url", "events", "description", "is_active", *readonly_fields)

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        values = {
            name: form.cleaned_data[name] for name in ("url", "events", "description", "is_active")
        }
        try:
            if change:
                services.subscription_update(subscription=obj, **values)
            else:
                made = services.subscription_create(**values)
                obj.pk = made.pk
                messages.warning(
                    request,
                    f"The signing secret of this webhook, shown this once: {made.secret}",
                )
        except WebhookUrlRefusedError as refused:
            messages.error(request, refused.detail)
            raise


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The log: filter by subscription, status or event type; replay selected deliveries."""

    list_display = (
        "created_at", "event_type", "subscription", "status", "attempts", "response_code",
        "latency_ms", "next_attempt_at",
    )  # fmt: skip
    list_filter = ("status", "event__type", "subscription")
    list_select_related = ("event", "subscription")
    readonly_fields: ClassVar = [f.name for f in WebhookDelivery._meta.fields]
    actions = ("replay",)

    @admin.display(description="event")
    def event_type(self, obj: WebhookDelivery) -> str:
        return obj.event.type

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("webhooks.replay_webhookdelivery")

    @admin.action(description="Replay the selected deliveries", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        for delivery in queryset:
            services.delivery_replay(delivery=delivery)
        self.message_user(request, f"{queryset.count()} deliveries queued again.")

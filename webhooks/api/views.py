"""Webhook subscriptions and their delivery log (clinic admins): `/api/v1/webhooks/`,
`/api/v1/webhooks/{id}/deliveries/` and `.../deliveries/{delivery_id}/replay/`."""

from typing import ClassVar

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from .. import selectors, services
from ..models import WebhookDelivery, WebhookSubscription
from .serializers import (
    DeliverySerializer,
    SubscriptionCreatedSerializer,
    SubscriptionCreateSerializer,
    SubscriptionSerializer,
)

REFUSED = OpenApiResponse(description="webhook-url-refused: the URL is not a public http(s) one")


@extend_schema_view(
    create=extend_schema(
        request=SubscriptionCreateSerializer,
        responses={201: SubscriptionCreatedSerializer, 400: REFUSED},
    ),
    update=extend_schema(responses={200: SubscriptionSerializer, 400: REFUSED}),
    partial_update=extend_schema(responses={200: SubscriptionSerializer, 400: REFUSED}),
)
class WebhookSubscriptionViewSet(viewsets.ModelViewSet):
    """A clinic's webhook subscriptions: the URL, the event types, a description and whether it
    is on. The signing secret is in the answer to `POST` only (yours if you send `secret`).
    A subscription disabled after repeated failures says why; `PATCH {"is_active": true}` turns
    it back on."""

    permission_model = "webhooks.webhooksubscription"
    serializer_class = SubscriptionSerializer
    ordering_fields = ["id", "created_at"]
    ordering = ["id"]

    def get_queryset(self) -> QuerySet[WebhookSubscription]:
        return selectors.subscription_list()

    def create(self, request: Request, *args, **kwargs) -> Response:
        data = SubscriptionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subscription = services.subscription_create(**data.validated_data)
        return Response(
            SubscriptionCreatedSerializer(subscription).data, status=status.HTTP_201_CREATED
        )

    def perform_update(self, serializer) -> None:
        serializer.instance = services.subscription_update(
            subscription=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance: WebhookSubscription) -> None:
        services.subscription_delete(subscription=instance)


class DeliveryFilter(filters.FilterSet):
    event = filters.CharFilter(field_name="event__type")

    class Meta:
        model = WebhookDelivery
        fields = ["status", "event"]


SUBSCRIPTION = OpenApiParameter("subscription_pk", OpenApiTypes.INT, OpenApiParameter.PATH)


@extend_schema_view(
    list=extend_schema(parameters=[SUBSCRIPTION]),
    retrieve=extend_schema(parameters=[SUBSCRIPTION]),
)
class WebhookDeliveryViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """A subscription's delivery log, newest first: the event, status (pending, sending,
    succeeded, failed), attempts, the receiver's last response code and latency, the last error
    and the next attempt. `replay/` sends a delivery's event again (same id and body) as a new
    delivery."""

    permission_model = "webhooks.webhookdelivery"
    permission_actions: ClassVar[dict[str, str]] = {"replay": "replay"}
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilter
    ordering_fields = ["id", "created_at"]
    ordering = ["-id"]

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        if getattr(self, "swagger_fake_view", False):  # the schema's generator: no URL kwargs
            return WebhookDelivery.objects.none()
        subscription = get_object_or_404(
            selectors.subscription_list(), pk=self.kwargs["subscription_pk"]
        )
        return selectors.delivery_list(subscription_id=subscription.pk)

    @extend_schema(parameters=[SUBSCRIPTION], request=None, responses={202: DeliverySerializer})
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, subscription_pk=None, pk=None) -> Response:
        replay = services.delivery_replay(delivery=self.get_object())
        fresh = self.get_queryset().get(pk=replay.pk)
        return Response(DeliverySerializer(fresh).data, status=status.HTTP_202_ACCEPTED)

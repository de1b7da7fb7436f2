from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import WebhookDeliveryViewSet, WebhookSubscriptionViewSet

router = SimpleRouter()
router.register("webhooks", WebhookSubscriptionViewSet, basename="webhook")

deliveries = WebhookDeliveryViewSet.as_view({"get": "list"})
delivery = WebhookDeliveryViewSet.as_view({"get": "retrieve"})
replay = WebhookDeliveryViewSet.as_view({"post": "replay"})

urlpatterns = [
    *router.urls,
    path(
        "webhooks/<int:subscription_pk>/deliveries/",
        deliveries,
        name="webhook-delivery-list",
    ),
    path(
        "webhooks/<int:subscription_pk>/deliveries/<int:pk>/",
        delivery,
        name="webhook-delivery-detail",
    ),
    path(
        "webhooks/<int:subscription_pk>/deliveries/<int:pk>/replay/",
        replay,
        name="webhook-delivery-replay",
    ),
]

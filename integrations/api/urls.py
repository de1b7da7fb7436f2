from django.urls import path
from rest_framework.routers import SimpleRouter

from .oauth import OAuthTokenView
from .views import ApiClientViewSet, UsageView

router = SimpleRouter()
router.register("api-clients", ApiClientViewSet, basename="api-client")

urlpatterns = [
    path("oauth/token/", OAuthTokenView.as_view(), name="oauth-token"),
    path("usage/", UsageView.as_view(), name="usage"),
    *router.urls,
]

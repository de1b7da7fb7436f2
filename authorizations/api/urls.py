from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("authorizations", views.AuthorizationViewSet, basename="authorization")
router.register(
    "authorization-requests",
    views.AuthorizationRequestViewSet,
    basename="authorization-request",
)

line = "authorizations/<int:authorization_id>/lines/<int:line_id>"
urlpatterns = [
    path(f"{line}/reserve/", views.ReserveView.as_view(), name="line-reserve"),
    path(f"{line}/release/", views.ReleaseView.as_view(), name="line-release"),
    path(f"{line}/consume/", views.ConsumeView.as_view(), name="line-consume"),
    *router.urls,
]

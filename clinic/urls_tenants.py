"""URLs of a clinic's host (`<slug>.<base domain>`), served in the clinic's schema."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from backoffice.board import board_urls
from scheduling.api.views import calendar_feed

from . import views

api_v1 = [
    path("", include("accounts.api.urls")),
    path("", include("practice.api.urls")),
    path("", include("authorizations.api.urls")),
    path("", include("scheduling.api.urls")),
]

urlpatterns = [
    path("health/", views.health, name="health"),
    path("admin/scheduling/board/", include(board_urls())),
    path("admin/", admin.site.urls),
    # Tokens are URL-safe base64 (secrets.token_urlsafe): any other character is no feed.
    path("calendar/<slug:token>.ics", calendar_feed, name="calendar-feed"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    # The patient pages: the clinic's front page and everything a patient does in a browser.
    path("", include("portal.urls")),
]

handler400 = "clinic.errors.handler400"
handler403 = "clinic.errors.handler403"
handler404 = "clinic.errors.handler404"
handler500 = "clinic.errors.handler500"

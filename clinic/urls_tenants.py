"""URLs of a clinic's host (`<slug>.<base domain>`), served in the clinic's schema."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.lockout import door_limits
from audit.autocomplete import autocomplete_view
from backoffice.account import account_urls
from backoffice.board import board_urls
from billing.admin.reports import report_urls
from notifications.views import link_page
from scheduling.api.views import calendar_feed
from waitlist.views import offer_link_page

from . import views

api_v1 = [
    path("", include("accounts.api.urls")),
    path("", include("practice.api.urls")),
    path("", include("authorizations.api.urls")),
    path("", include("scheduling.api.urls")),
    path("", include("billing.api.urls")),
    path("", include("notifications.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("waitlist.api.urls")),
    path("", include("integrations.api.urls")),
]

urlpatterns = [
    path("health/", views.health, name="health"),
    path("admin/scheduling/board/", include(board_urls())),
    path("admin/account/", include(account_urls())),
    path("admin/billing/reports/", include(report_urls())),
    # Sign-in is rate-limited per address before Django's view (lockouts: accounts.lockout).
    path("admin/login/", door_limits("login")(admin.site.login)),
    # The names the admin's autocomplete answers with are reads of those patients (audit).
    path("admin/autocomplete/", autocomplete_view(admin.site)),
    path("admin/", admin.site.urls),
    # Tokens are URL-safe base64 (secrets.token_urlsafe): any other character is no feed.
    path("calendar/<slug:token>.ics", calendar_feed, name="calendar-feed"),
    # A signed link in a message: confirm, cancel or reschedule one visit (notifications.links).
    path("n/<str:token>/", link_page, name="notification-link"),
    # A signed link in a waitlist offer: accept or decline the held slot (waitlist.links).
    path("w/<str:token>/", offer_link_page, name="waitlist-offer-link"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file of its own (`?script`), not inline:
    # the Content Security Policy allows scripts from this origin only.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    # The patient pages: the clinic's front page and everything a patient does in a browser.
    path("", include("portal.urls")),
]

handler400 = "clinic.errors.handler400"
handler403 = "clinic.errors.handler403"
handler404 = "clinic.errors.handler404"
handler500 = "clinic.errors.handler500"

"""URLs of the bare base domain: the platform (public schema)."""

from django.urls import path

from accounts.lockout import door_limits
from tenants.admin import platform_site
from usage.metrics import usage_collector

from . import metrics, views

metrics.scrape_collector(usage_collector)

urlpatterns = [
    path("", views.landing, name="landing"),
    path("health/", views.health, name="health"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("answer-cache/", views.answer_cache_stats, name="answer-cache-stats"),
    path("admin/login/", door_limits("login")(platform_site.login)),
    path("admin/", platform_site.urls),
]

handler400 = "clinic.errors.handler400"
handler403 = "clinic.errors.handler403"
handler404 = "clinic.errors.handler404"
handler500 = "clinic.errors.handler500"

"""URLs of the no-database ceiling server (bench/settings_nodb.py)."""

from django.urls import path

from clinic import views

urlpatterns = [path("bench/ceiling/", views.bench_ceiling, name="bench-ceiling")]

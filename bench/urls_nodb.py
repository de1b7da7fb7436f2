"""URLs of the no-database ceiling server (bench/settings_nodb.py)."""

from django.urls import path

from bench.urls import ceiling

urlpatterns = [path("bench/ceiling/", ceiling, name="bench-ceiling")]

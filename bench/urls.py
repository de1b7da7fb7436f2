"""A clinic host's URLs while a benchmark runs: the production ones plus the ceiling view."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from clinic.urls_tenants import handler400, handler403, handler404, handler500  # noqa: F401
from clinic.urls_tenants import urlpatterns as clinic_urls


def ceiling(request: HttpRequest) -> JsonResponse:
    """The cheapest answer a clinic host gives: no query besides the tenant middleware's host
    lookup. The benchmarks measure every scenario against it (bench/README.md)."""
    return JsonResponse({"status": "ok"})


urlpatterns = [path("bench/ceiling/", ceiling, name="bench-ceiling"), *clinic_urls]

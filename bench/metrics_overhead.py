"""What `clinic.metrics.MetricsMiddleware` adds to a request: the middleware around a view that
answers at once, 100,000 times (README, Operations: metrics).

    scripts/with-services .venv/bin/python bench/metrics_overhead.py
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")

import django  # noqa: E402

django.setup()

from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.urls import resolve  # noqa: E402

from clinic.metrics import MetricsMiddleware  # noqa: E402

N = 100_000


def main() -> None:
    request = RequestFactory().get("/health/")
    request.resolver_match = resolve("/health/", urlconf="clinic.urls_public")
    response = HttpResponse(b"")
    bare = lambda r: response  # noqa: E731
    measured = MetricsMiddleware(bare)
    for call in (bare, measured):
        for _ in range(1000):
            call(request)
    timings = {}
    for label, call in (("without", bare), ("with", measured)):
        started = time.perf_counter()
        for _ in range(N):
            call(request)
        timings[label] = (time.perf_counter() - started) / N * 1e6
    print(f"MetricsMiddleware adds {timings['with'] - timings['without']:.1f} µs a request")


if __name__ == "__main__":
    main()

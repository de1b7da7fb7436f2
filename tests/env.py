"""Environment of a test run, loaded as an early pytest plugin (`-p tests.env` in pyproject).

It must run before pytest-django imports the settings, which happens before any conftest is
loaded: private queue, cache and channel prefixes per test run (so a test run never shares a
worker or keys with `make run` or another test run on this machine) and a fast password
hasher.
"""

import os

_RUN = f"test{os.getpid()}"
os.environ.setdefault("CELERY_QUEUE", f"clinic-{_RUN}")
os.environ.setdefault("CACHE_KEY_PREFIX", f"clinic-{_RUN}")
os.environ.setdefault("CHANNEL_LAYER_PREFIX", f"clinic-{_RUN}:asgi")
os.environ.setdefault("CLINIC_FAST_PASSWORD_HASHER", "1")
os.environ.setdefault("CLINIC_DOMAIN_CACHE_SECONDS", "5")

"""Test session set-up shared by every app.

The test database is migrated once and the two test clinics (acme, globex) are provisioned
once per session through the real provisioning path (clone of the template schema). Most tests
run inside a rolled-back transaction (`db`); tests that need committed rows (a real Celery
worker, websockets, concurrent connections) use `committed`, which truncates the clinics'
tables afterwards.
"""

import os

# Before Django's settings load: private queue, cache and channel prefixes per test run, so a
# test run never shares a worker or keys with `make run` or another test run on this machine.
_RUN = f"test{os.getpid()}"
os.environ.setdefault("CELERY_QUEUE", f"clinic-{_RUN}")
os.environ.setdefault("CACHE_KEY_PREFIX", f"clinic-{_RUN}")
os.environ.setdefault("CHANNEL_LAYER_PREFIX", f"clinic-{_RUN}:asgi")
os.environ.setdefault("CLINIC_FAST_PASSWORD_HASHER", "1")
os.environ.setdefault("CLINIC_DOMAIN_CACHE_SECONDS", "5")


pytest_plugins = ["tests.fixtures"]

"""Test session set-up shared by every app.

The test database is migrated once and the two test clinics (acme, globex) are provisioned
once per session through the real provisioning path (clone of the template schema). Most tests
run inside a rolled-back transaction (`db`); tests that need committed rows (a real Celery
worker, websockets, concurrent connections) use `committed`, which truncates the clinics'
tables afterwards.
"""

# The run's environment (private queue and prefixes, fast hasher) is set by `tests.env`,
# loaded with `-p` in pyproject.toml: settings are imported before this file is.
pytest_plugins = ["tests.fixtures"]

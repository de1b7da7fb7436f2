"""Test session set-up shared by every app: see tests/fixtures.py (fixtures) and
tests/testenv.py (environment set before Django's settings load)."""

pytest_plugins = ["tests.fixtures", "tests.live"]

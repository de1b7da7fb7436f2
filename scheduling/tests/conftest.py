"""Fixtures of the admin tests (role clients: tests/fixtures.py)."""

import pytest

from tests.fixtures import in_clinic

from .factories import World, build_world


@pytest.fixture
def world(acme, role_users) -> World:
    """A clinic day in acme whose Dr. Alpha is the `practitioner` role user's own record."""
    with in_clinic(acme):
        return build_world(role_users["practitioner"])

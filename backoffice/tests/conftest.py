"""Fixtures of the schedule-board tests (role clients: tests/fixtures.py)."""

import pytest

from scheduling.tests.factories import World, build_world
from tests.fixtures import in_clinic


@pytest.fixture
def world(acme, role_users) -> World:
    """A clinic day in acme whose Dr. Alpha is the `practitioner` role user's own record."""
    with in_clinic(acme):
        return build_world(role_users["practitioner"])

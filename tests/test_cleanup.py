"""The committed tests' clean-up never hangs the run: a connection a test left holding a lock
(a stuck thread, a worker caught mid-transaction) is named and ended after a bounded wait.
(A clean-up TRUNCATE waiting on such a lock once held CI until its time ran out.)"""

import psycopg
import pytest
from django.db import connection

from scheduling.models import Appointment
from tests import fixtures


def test_a_leftover_transaction_is_ended_and_named_instead_of_hanging_the_clean_up(
    committed_acme, monkeypatch
):
    monkeypatch.setattr(fixtures, "LOCK_WAIT_SECONDS", 1)
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    leftover = psycopg.connect(**params)
    table = f'"{committed_acme.schema_name}"."{Appointment._meta.db_table}"'
    leftover.execute(f"LOCK TABLE {table} IN ACCESS SHARE MODE")  # and never commits

    with pytest.warns(UserWarning, match=r"clean-up ended connection \d+ .*LOCK TABLE"):
        fixtures._reset_clinics()

    with pytest.raises(psycopg.OperationalError):
        leftover.execute("SELECT 1")  # the leftover was ended, not waited for

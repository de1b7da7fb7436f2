"""Two charge runs on one visit at once (threads, each on its own connection, committing) make
one charge and post it once: the appointment's row lock queues them and the partial unique
index `charge_one_live_per_visit_and_code` is the guarantee."""

import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections, connection
from django_tenants.utils import schema_context

from billing import charges as services
from billing.models import Charge, LedgerEntry
from billing.tests import factories
from tests.fixtures import in_clinic


def test_concurrent_charge_runs_on_one_visit_make_one_charge(committed_acme):
    with in_clinic(committed_acme):
        visit = factories.billable_visit()
    runs = 8
    barrier = threading.Barrier(runs)

    def run(_: int) -> str:
        try:
            with schema_context(committed_acme.schema_name):
                barrier.wait(timeout=30)
                [charge] = services.charges_create_for_visit(appointment=visit.appointment)
                return f"charge {charge.pk}"
        except Exception as error:  # noqa: BLE001  (any other outcome fails the test)
            return f"error: {type(error).__name__}: {error}"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=runs) as pool:
        outcomes = list(pool.map(run, range(runs)))
    close_old_connections()
    assert len(set(outcomes)) == 1 and outcomes[0].startswith("charge"), outcomes
    with in_clinic(committed_acme):
        assert Charge.objects.filter(appointment=visit.appointment).count() == 1
        assert LedgerEntry.objects.filter(charge__appointment=visit.appointment).count() == 1


def test_concurrent_nightly_and_biller_runs_charge_each_visit_once(committed_acme):
    with in_clinic(committed_acme):
        visits = [factories.billable_visit(day=None) for _ in range(3)]
    barrier = threading.Barrier(2)

    def run(_: int) -> str:
        try:
            with schema_context(committed_acme.schema_name):
                barrier.wait(timeout=30)
                result = services.charges_create_for_completed()
                return f"created {result.created}"
        except Exception as error:  # noqa: BLE001
            return f"error: {type(error).__name__}: {error}"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(run, range(2)))
    close_old_connections()
    assert not [o for o in outcomes if o.startswith("error")], outcomes
    with in_clinic(committed_acme):
        for visit in visits:
            assert Charge.objects.filter(appointment=visit.appointment).count() == 1
        assert LedgerEntry.objects.count() == 3

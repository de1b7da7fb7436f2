"""The nightly charge run through a real Celery worker: the beat task queues one run per
clinic, each charges its own completed visits in its own schema."""

import time

import pytest
from django.conf import settings

from billing.models import Charge
from billing.tasks import nightly_charge_completed_visits_task
from billing.tests import factories
from tests.fixtures import in_clinic


def _charged(clinic, appointment_id: int, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with in_clinic(clinic):
            if Charge.objects.filter(appointment_id=appointment_id).exists():
                return True
        time.sleep(0.3)
    return False


def test_the_nightly_run_is_on_the_beat_schedule():
    entry = settings.CELERY_BEAT_SCHEDULE["billing-nightly-charges"]
    assert entry["task"] == "billing.nightly_charges"


@pytest.mark.usefixtures("celery_worker")
def test_nightly_run_charges_each_clinics_completed_visits(committed_acme, committed_globex):
    with in_clinic(committed_acme):
        acme_visit = factories.billable_visit()
        unbillable = factories.billable_visit()
        unbillable.episode.diagnoses.all().delete()
    with in_clinic(committed_globex):
        globex_visit = factories.billable_visit()
    assert nightly_charge_completed_visits_task.delay().get(timeout=30) == 2
    assert _charged(committed_acme, acme_visit.appointment.pk)
    assert _charged(committed_globex, globex_visit.appointment.pk)
    with in_clinic(committed_acme):
        assert not Charge.objects.filter(appointment=unbillable.appointment).exists()
        assert Charge.objects.count() == 1
    with in_clinic(committed_globex):
        assert Charge.objects.count() == 1

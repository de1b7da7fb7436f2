"""The daily beat task fans out to every clinic; each clinic's digest reaches its own front desk
(a real Celery worker; emails written by Django's file backend)."""

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from authorizations import services
from authorizations.tasks import daily_authorization_alerts_task
from authorizations.tests import factories as af
from scheduling.tests import factories as f
from tests.fixtures import in_clinic


def _mails_to(folder: Path, address: str, timeout: float = 30) -> list[str]:
    """The messages to ``address``: Django's file backend appends every message a connection
    sends within one second to one file, each followed by a line of 79 dashes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = [m for p in folder.iterdir() for m in p.read_text().split("-" * 79 + "\n")]
        found = [m for m in messages if f"To: {address}" in m]
        if found:
            return found
        time.sleep(0.2)
    return []


@pytest.mark.usefixtures("celery_worker")
def test_daily_alerts_email_each_clinics_front_desk(committed, worker_mail_dir, make_user):
    from tenants.models import Clinic

    acme, globex = Clinic.objects.get(slug="acme"), Clinic.objects.get(slug="globex")
    make_user(acme, "front_desk", email="alerts-desk@acme.test")
    make_user(globex, "front_desk", email="alerts-desk@globex.test")
    with in_clinic(acme):
        code = f.service_code()
        _, line = af.authorization(f.patient(first="Nearly"), code, units=10)
        services.units_reserve(line=line, units=9, service_date=timezone.localdate())
        af.authorization(f.patient(first="Calm"), code, units=100)
    with in_clinic(globex):
        af.authorization(
            f.patient(first="Soon"), f.service_code(), end=timezone.localdate() + timedelta(days=5)
        )
    assert daily_authorization_alerts_task.delay().get(timeout=30) == 2
    [acme_mail] = _mails_to(worker_mail_dir, "alerts-desk@acme.test")
    [globex_mail] = _mails_to(worker_mail_dir, "alerts-desk@globex.test")
    assert "Acme Therapy: 1 authorization(s)" in acme_mail and "Nearly" in acme_mail
    assert "Calm" not in acme_mail and "Soon" not in acme_mail
    assert "Expires in 5 day(s)" in globex_mail and "Nearly" not in globex_mail

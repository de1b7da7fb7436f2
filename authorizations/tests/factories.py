import itertools
from datetime import date, timedelta

from django.utils import timezone

from authorizations.models import Authorization, AuthorizationLine
from practice.models import Coverage, Patient, Payer, ServiceCode

_seq = itertools.count(1)


def payer() -> Payer:
    n = next(_seq)
    return Payer.objects.create(name=f"Payer {n}", edi_payer_id=f"P{n:05d}")


def coverage(patient: Patient) -> Coverage:
    return Coverage.objects.create(
        patient=patient,
        payer=payer(),
        member_id=f"M{next(_seq)}",
        effective_from=date(2020, 1, 1),
    )


def authorization(
    patient: Patient,
    *codes: ServiceCode,
    units: int = 50,
    weekly_cap: int | None = None,
    start: date | None = None,
    end: date | None = None,
    threshold: int = 80,
) -> tuple[Authorization, AuthorizationLine]:
    today = timezone.localdate()
    auth = Authorization.objects.create(
        patient=patient,
        coverage=coverage(patient),
        number=f"AUTH-{next(_seq)}",
        start_date=start or today - timedelta(days=30),
        end_date=end or today + timedelta(days=180),
        alert_threshold_percent=threshold,
    )
    line = AuthorizationLine.objects.create(
        authorization=auth, units_authorized=units, weekly_cap=weekly_cap
    )
    line.service_codes.add(*codes)
    return auth, line

"""Billing's test data: a completed, billable visit (a payer's coverage and authorization, an
episode with a diagnosis, fee schedules) built through the real services where one exists."""

import itertools
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from authorizations.models import Authorization, AuthorizationLine
from authorizations.tests import factories as af
from billing import ledger
from billing.claims import claims_build
from billing.models import (
    BillingProfile,
    Charge,
    Claim,
    Episode,
    EpisodeDiagnosis,
    Fee,
    FeeSchedule,
)
from practice.models import Coverage, Patient, Payer, Practitioner, ServiceCode
from practice.validators import npi_complete
from scheduling.models import Appointment, AppointmentType
from scheduling.services import appointment_book, appointment_complete
from scheduling.tests import factories as f

_seq = itertools.count(1)


def npi() -> str:
    return npi_complete(f"{next(_seq) + 100_000_000:09d}")


def fee_schedule(
    *, payer: Payer | None = None, code: ServiceCode, charge: str = "50.00", allowed: str = "40.00"
) -> tuple[FeeSchedule, Fee]:
    schedule = FeeSchedule.objects.filter(payer=payer).first() or FeeSchedule.objects.create(
        name=f"{payer or 'Self-pay'} fees", payer=payer, effective_from=date(2020, 1, 1)
    )
    fee, _ = Fee.objects.get_or_create(
        schedule=schedule,
        service_code=code,
        modifiers="",
        defaults={"charge_per_unit": Decimal(charge), "allowed_per_unit": Decimal(allowed)},
    )
    return schedule, fee


def episode(patient: Patient, coverage: Coverage | None, *codes: str) -> Episode:
    ep = Episode.objects.create(
        patient=patient,
        coverage=coverage,
        title="ABA therapy",
        referring_provider_name="Referring, Rita",
        referring_provider_npi=npi(),
        start_date=date(2020, 1, 1),
    )
    for rank, code in enumerate(codes or ("F84.0",), start=1):
        EpisodeDiagnosis.objects.create(episode=ep, rank=rank, code=code)
    return ep


@dataclass
class Visit:
    """A completed visit of `minutes` drawing units of a 15-minute code under an
    authorization of the patient's coverage, with an episode and fees for payer and self-pay."""

    appointment: Appointment
    patient: Patient
    practitioner: Practitioner
    code: ServiceCode
    coverage: Coverage
    payer: Payer
    authorization: Authorization
    line: AuthorizationLine
    episode: Episode
    fee: Fee
    self_pay_fee: Fee
    visit_type: AppointmentType


def billable_visit(
    *,
    minutes: int = 60,
    units_authorized: int = 40,
    day: date | None = None,
    patient: Patient | None = None,
    practitioner: Practitioner | None = None,
    code: ServiceCode | None = None,
) -> Visit:
    """Booked through scheduling (units reserved) and completed (units consumed)."""
    code = code or f.service_code("97153", 15)
    doctor = practitioner or f.practitioner()
    if not doctor.npi:
        doctor.npi = npi()
        doctor.save(update_fields=["npi"])
    who = patient or f.patient()
    auth, line = af.authorization(who, code, units=units_authorized)
    visit_type = f.appointment_type(doctor, minutes=minutes, code=code)
    start = f.local(day or f.next_weekday(2), 10)
    appointment = appointment_book(
        patient=who, practitioner=doctor, appointment_type=visit_type, start=start
    )
    appointment = appointment_complete(
        appointment=appointment, now=start + timedelta(minutes=minutes)
    )
    _, fee = fee_schedule(payer=auth.coverage.payer, code=code)
    _, self_pay_fee = fee_schedule(payer=None, code=code, charge="45.00", allowed="45.00")
    return Visit(
        appointment=appointment,
        patient=who,
        practitioner=doctor,
        code=code,
        coverage=auth.coverage,
        payer=auth.coverage.payer,
        authorization=auth,
        line=line,
        episode=episode(who, auth.coverage),
        fee=fee,
        self_pay_fee=self_pay_fee,
        visit_type=visit_type,
    )


# --- Claims (issue 17, claims side) ------------------------------------------------------------

CLINIC_NPI = "1234567893"  # a valid check digit (Luhn with the 80840 prefix)


def billing_profile() -> BillingProfile:
    """The clinic's billing profile, complete enough for an 837P that pyx12 accepts."""
    profile, _ = BillingProfile.objects.update_or_create(
        pk=1,
        defaults={
            "legal_name": "ACME ABA THERAPY",
            "npi": CLINIC_NPI,
            "tax_id": "123456789",
            "taxonomy": "103K00000X",
            "address_line1": "123 MAIN ST",
            "city": "SPRINGFIELD",
            "state": "IL",
            "postal_code": "627011234",
            "contact_name": "BILLING DEPT",
            "contact_phone": "5555551234",
            "submitter_id": "ACMEABA",
            "receiver_name": "CLEARINGHOUSE",
            "receiver_id": "CLEARHOUSE",
        },
    )
    return profile


def charge(
    visit: Visit,
    *,
    code: ServiceCode | None = None,
    units: int = 4,
    pointers: tuple[int, ...] = (1,),
    amount: Decimal | None = None,
    episode: Episode | None = None,
) -> Charge:
    """An open charge of `visit` (as b1's charging service will make it), posted to its payer.
    The patient gets an address (an 837P's subscriber needs one)."""
    if not visit.patient.address_line1:
        Patient.objects.filter(pk=visit.patient.pk).update(
            address_line1="456 OAK AVE", city="SPRINGFIELD", state="IL", postal_code="62702"
        )
        visit.patient.refresh_from_db()
    code = code or visit.code
    per_unit = visit.fee.charge_per_unit
    made = Charge.objects.create(
        appointment=visit.appointment,
        patient=visit.patient,
        episode=episode or visit.episode,
        coverage=visit.coverage,
        payer=visit.payer,
        fee=visit.fee if code == visit.code else None,
        service_code=code,
        service_date=visit.appointment.start.date(),
        units=units,
        place_of_service="11",
        diagnosis_pointers=list(pointers),
        amount=amount if amount is not None else per_unit * units,
        expected_allowed=(visit.fee.allowed_per_unit or Decimal(0)) * units,
        rendering=visit.practitioner,
        rendering_npi=visit.practitioner.npi,
        authorization=visit.authorization,
        authorization_number=visit.authorization.number,
    )
    ledger.charge_post(charge=made)
    return made


def draft_claim(appointment: Appointment) -> Claim:
    """A draft claim of one charge of a (booked) visit: a row for the role matrix."""
    patient, doctor = appointment.patient, appointment.practitioner
    code = appointment.appointment_type.service_code or f.service_code("97153", 15)
    cover = af.coverage(patient)
    made = Charge.objects.create(
        appointment=appointment, patient=patient, episode=episode(patient, cover),
        coverage=cover, payer=cover.payer, service_code=code,
        service_date=appointment.start.date(), units=4, place_of_service="11",
        diagnosis_pointers=[1], amount=Decimal("200.00"), rendering=doctor,
    )  # fmt: skip
    [claim] = claims_build(charges=[made.pk])
    return claim

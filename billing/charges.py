"""Fee schedules, episodes of care and charges: what a completed visit costs, and who owes it.

Writes (each owns its transaction): `fee_schedule_create` / `fee_schedule_update`,
`episode_create` / `episode_update`, `charges_create_for_visit`, `charges_create_for_completed`
(the nightly task and the biller's "Create charges"), `charge_void`. Reads: `fee_for`,
`unbilled_visits` (completed visits without a live charge, each with why it cannot be charged).

A charge is priced from one visit, checked against the step before it: its units are the
clinic's rounding of the visit's minutes and must equal the authorization units that visit
consumed; its diagnoses are the episode's; its fee is the payer's schedule in force on the day.
One live charge per visit and code is the database's partial unique index, so two concurrent
runs on one visit make one charge. Every new charge is posted to the money ledger in the same
transaction (`ledger.charge_post`); a void posts the reversal.
"""

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet

from authorizations.models import UnitReservation
from authorizations.services import units_for_visit
from clinic.errors import ApplicationError, constraint_name
from practice.models import ClinicSettings, Coverage, Patient, Payer, ServiceCode
from scheduling.models import Appointment

from . import ledger
from .credits import credit_apply
from .models import (
    ICD10CM_PATTERN,
    BillingProfile,
    Charge,
    DiagnosisCode,
    Episode,
    EpisodeDiagnosis,
    Fee,
    FeeSchedule,
    LedgerEntry,
    PayerRules,
)

CENT = Decimal("0.01")
OFFICE = "11"
# POS 10: telehealth in the patient's home (where the clinic's telehealth visits are held); 02
# is telehealth elsewhere. CMS asks for modifier 95 with either.
TELEHEALTH_POS = "10"
TELEHEALTH_MODIFIER = "95"
MAX_MODIFIERS = 4
MAX_DIAGNOSES = 12


class ChargeUnitsMismatchError(ApplicationError):
    """The units a visit's minutes give disagree with the authorization units it consumed."""

    status = 409
    code = "charge-units-mismatch"
    title = "Charge units disagree with the authorization"


class VisitNotBillableError(ApplicationError):
    status = 409
    code = "visit-not-billable"
    title = "The visit cannot be charged"


class ChargeStateError(ApplicationError):
    status = 409
    code = "charge-state"
    title = "The charge cannot change this way"


# --- Fee schedules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeeSpec:
    """One fee as the client gives it (kept, changed or added by code + modifiers)."""

    service_code: ServiceCode
    charge_per_unit: Decimal
    allowed_per_unit: Decimal | None = None
    modifiers: str = ""


def _modifiers_normal(value: str, *, field_name: str) -> str:
    parts = [p for p in re.split(r"[\s:,]+", (value or "").strip().upper()) if p]
    if len(parts) > MAX_MODIFIERS or any(not re.fullmatch(r"[A-Z0-9]{2}", p) for p in parts):
        raise ValidationError(
            {field_name: "Up to four two-character modifiers separated by ':' (e.g. HM:95)."}
        )
    if len(set(parts)) != len(parts):
        raise ValidationError({field_name: "A modifier is given twice."})
    return ":".join(parts)


def _schedule_save(schedule: FeeSchedule) -> None:
    if schedule.effective_to and schedule.effective_to < schedule.effective_from:
        raise ValidationError({"effective_to": "The schedule cannot end before it starts."})
    try:
        with transaction.atomic():
            schedule.save()
    except IntegrityError as error:
        if constraint_name(error) == "fee_schedule_no_overlap_per_payer":
            payer: Payer | None = schedule.payer
            whose = payer.name if payer is not None else "the clinic's default (self-pay)"
            raise ValidationError(
                {
                    "effective_from": f"These dates overlap another schedule of {whose}; end "
                    "that one first (effective_to) or start this one after it."
                }
            ) from error
        raise


def _fees_set(schedule: FeeSchedule, specs: Sequence[FeeSpec], *, replace: bool) -> None:
    seen: set[tuple[int, str]] = set()
    for index, spec in enumerate(specs):
        modifiers = _modifiers_normal(spec.modifiers, field_name=f"fees.{index}.modifiers")
        key = (spec.service_code.pk, modifiers)
        if key in seen:
            raise ValidationError(
                {f"fees.{index}.service_code": "This code and modifiers are given twice."}
            )
        seen.add(key)
        if spec.charge_per_unit < 0:
            raise ValidationError({f"fees.{index}.charge_per_unit": "Must not be negative."})
        if spec.allowed_per_unit is not None and spec.allowed_per_unit < 0:
            raise ValidationError({f"fees.{index}.allowed_per_unit": "Must not be negative."})
        Fee.objects.update_or_create(
            schedule=schedule,
            service_code=spec.service_code,
            modifiers=modifiers,
            defaults={
                "charge_per_unit": spec.charge_per_unit.quantize(CENT),
                "allowed_per_unit": None
                if spec.allowed_per_unit is None
                else spec.allowed_per_unit.quantize(CENT),
            },
        )
    if not replace:
        return
    stale = [
        fee
        for fee in schedule.fees.select_related("service_code")
        if (fee.service_code_id, fee.modifiers) not in seen
    ]
    for fee in stale:
        if fee.charges.exists():
            raise ValidationError(
                {
                    "fees": f"The fee for {fee.service_code.code}"
                    f"{'-' + fee.modifiers if fee.modifiers else ''} has charges; keep it, "
                    "or end this schedule and start a new one."
                }
            )
        fee.delete()


@transaction.atomic
def fee_schedule_create(
    *,
    name: str,
    payer: Payer | None = None,
    effective_from: date,
    effective_to: date | None = None,
    fees: Sequence[FeeSpec] = (),
) -> FeeSchedule:
    """A schedule for `payer` (None: the clinic's default, which self-pay visits are priced
    from) with its fees. Two schedules of one payer never overlap: the exclusion constraint is
    the guarantee, turned into a 400 on `effective_from`."""
    schedule = FeeSchedule(
        name=name, payer=payer, effective_from=effective_from, effective_to=effective_to
    )
    _schedule_save(schedule)
    _fees_set(schedule, fees, replace=False)
    return schedule


@transaction.atomic
def fee_schedule_update(
    *, schedule: FeeSchedule, fees: Sequence[FeeSpec] | None = None, **changes: Any
) -> FeeSchedule:
    """Change name, payer or dates; `fees`, when given, become the schedule's fees (a fee that
    charges were priced from cannot be removed). Locks the schedule's row."""
    schedule = FeeSchedule.objects.select_for_update().get(pk=schedule.pk)
    allowed = {"name", "payer", "effective_from", "effective_to"}
    for key, value in changes.items():
        if key not in allowed:
            raise ValidationError({key: "This field cannot be changed."})
        setattr(schedule, key, value)
    _schedule_save(schedule)
    if fees is not None:
        _fees_set(schedule, fees, replace=True)
    return schedule


def fee_for(
    *, payer: Payer | None, service_code: ServiceCode, modifiers: str, on: date
) -> Fee | None:
    """The fee of `payer`'s schedule (None: the clinic default) in force `on`, for the code
    with these modifiers, else for the code without modifiers."""
    schedule = (
        FeeSchedule.objects.filter(payer=payer, effective_from__lte=on)
        .filter(Q(effective_to__isnull=True) | Q(effective_to__gte=on))
        .first()
    )
    if schedule is None:
        return None
    fees = {
        fee.modifiers: fee
        for fee in Fee.objects.filter(
            schedule=schedule, service_code=service_code, modifiers__in={modifiers, ""}
        )
    }
    return fees.get(modifiers) or fees.get("")


# --- Episodes and diagnoses ---------------------------------------------------------------------


def diagnosis_normal(code: str) -> str:
    """An ICD-10-CM code as clinicians write it: upper case, the dot after the third character
    (X12 drops it, some EHRs do too: F840 → F84.0)."""
    code = (code or "").strip().upper()
    if "." not in code and len(code) > 3:
        code = f"{code[:3]}.{code[3:]}"
    return code


def _diagnoses_check(codes: Sequence[str]) -> list[str]:
    if not codes:
        raise ValidationError({"diagnoses": "Give at least one diagnosis (rank 1 first)."})
    if len(codes) > MAX_DIAGNOSES:
        raise ValidationError({"diagnoses": f"At most {MAX_DIAGNOSES} diagnoses per episode."})
    normal = [diagnosis_normal(code) for code in codes]
    for index, code in enumerate(normal):
        if not re.fullmatch(ICD10CM_PATTERN, code):
            raise ValidationError(
                {
                    f"diagnoses.{index}": f"{codes[index]!r} is not an ICD-10-CM code (a letter, "
                    "two characters, then a dot and up to four, e.g. F84.0)."
                }
            )
        if code in normal[:index]:
            raise ValidationError({f"diagnoses.{index}": f"{code} is given twice."})
    if DiagnosisCode.objects.exists():
        known = set(DiagnosisCode.objects.filter(code__in=normal).values_list("code", flat=True))
        for index, code in enumerate(normal):
            if code not in known:
                raise ValidationError(
                    {f"diagnoses.{index}": f"{code} is not in the clinic's ICD-10-CM code list."}
                )
    return normal


def _episode_check(episode: Episode) -> None:
    if episode.end_date and episode.end_date < episode.start_date:
        raise ValidationError({"end_date": "The episode cannot end before it starts."})
    coverage: Coverage | None = episode.coverage
    if coverage is not None and coverage.patient_id != episode.patient_id:
        raise ValidationError({"coverage": "This coverage is another patient's."})


def _diagnoses_replace(episode: Episode, codes: Sequence[str]) -> None:
    normal = _diagnoses_check(codes)
    episode.diagnoses.all().delete()
    EpisodeDiagnosis.objects.bulk_create(
        EpisodeDiagnosis(episode=episode, rank=rank, code=code)
        for rank, code in enumerate(normal, start=1)
    )


EPISODE_FIELDS = {
    "coverage",
    "title",
    "referring_provider_name",
    "referring_provider_npi",
    "supervising",
    "start_date",
    "end_date",
    "status",
}


@transaction.atomic
def episode_create(
    *, patient: Patient, start_date: date, diagnoses: Sequence[str], **fields: Any
) -> Episode:
    """An episode with its diagnoses ranked in the order given (rank 1 = principal): each
    ICD-10-CM by format, and in the clinic's loaded code list when it loaded one."""
    unknown = set(fields) - EPISODE_FIELDS
    if unknown:
        raise ValidationError({sorted(unknown)[0]: "Unknown field."})
    episode = Episode(patient=patient, start_date=start_date, **fields)
    _episode_check(episode)
    episode.full_clean(exclude=["patient", "coverage"])
    episode.save()
    _diagnoses_replace(episode, diagnoses)
    return episode


@transaction.atomic
def episode_update(
    *, episode: Episode, diagnoses: Sequence[str] | None = None, **changes: Any
) -> Episode:
    """Change an episode; `diagnoses`, when given, replace its ranked list. Diagnoses that
    charges already point at stay as they were on those charges (pointers are ranks)."""
    episode = Episode.objects.select_for_update().get(pk=episode.pk)
    for key, value in changes.items():
        if key not in EPISODE_FIELDS:
            raise ValidationError({key: "This field cannot be changed."})
        setattr(episode, key, value)
    _episode_check(episode)
    episode.full_clean(exclude=["patient", "coverage"])
    episode.save()
    if diagnoses is not None:
        _diagnoses_replace(episode, diagnoses)
    return episode


def icd10_load(*, lines: Iterable[str], billable_only: bool = True) -> int:
    """Load the CMS ICD-10-CM order file (icd10cm_order_YYYY.txt: order number 5, code 7,
    header flag 1 (1 = billable), short description 60, long description; fixed columns) into
    DiagnosisCode, replacing what is there. Returns the number of codes loaded."""
    rows: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if len(line) < 16:
            raise ValidationError({"file": f"Line {number} is not in the CMS order file format."})
        raw, flag = line[6:13].strip(), line[14:15]
        long_description = line[77:].strip() or line[16:76].strip()
        if billable_only and flag != "1":
            continue
        code = diagnosis_normal(raw)
        if not re.fullmatch(ICD10CM_PATTERN, code) or flag not in ("0", "1"):
            raise ValidationError({"file": f"Line {number}: {raw!r} is not an ICD-10-CM code."})
        rows[code] = long_description[:300]
    with transaction.atomic():
        DiagnosisCode.objects.all().delete()
        DiagnosisCode.objects.bulk_create(
            (DiagnosisCode(code=code, description=text) for code, text in rows.items()),
            batch_size=5000,
        )
    return len(rows)


def icd10_load_csv(*, lines: Iterable[str]) -> int:
    """The same from a two-column CSV (code, description)."""
    return icd10_load(
        lines=(
            f"{0:05d} {row[0]:<7} 1 {row[1][:60]:<60} {row[1]}" for row in csv.reader(lines) if row
        )
    )


# --- Charges ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    """Why a visit cannot be charged: a stable code and what to do about it."""

    code: str
    detail: str


@dataclass
class Plan:
    """A visit's charge as it would be made, or the reasons it cannot be."""

    appointment: Appointment
    reasons: list[Reason] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)


def _service_date(appointment: Appointment) -> date:
    reservation = appointment.unit_reservation
    if reservation is not None:
        return reservation.service_date
    return appointment.start.astimezone(ZoneInfo(appointment.practitioner.timezone)).date()


def _episode_for(
    appointment: Appointment, day: date, episodes: Sequence[Episode]
) -> Episode | None:
    """The patient's active episode in force on `day`, preferring one under the coverage the
    visit's authorization belongs to, then one with diagnoses, then the latest."""
    candidates = [
        ep
        for ep in episodes
        if ep.status == Episode.Status.ACTIVE
        and ep.start_date <= day
        and (ep.end_date is None or ep.end_date >= day)
    ]
    reservation = appointment.unit_reservation
    auth_coverage = reservation.line.authorization.coverage_id if reservation else None

    def rank(ep: Episode) -> tuple[bool, bool, date]:
        return (ep.coverage_id == auth_coverage, bool(ep.diagnoses.all()), ep.start_date)

    return max(candidates, key=rank) if candidates else None


def _modifiers_for(appointment: Appointment, profile: BillingProfile | None) -> str:
    mods: list[str] = []
    mapping = (profile.credential_modifiers if profile else None) or {}
    title = (appointment.practitioner.title or "").strip()
    credential = mapping.get(title) or {k.upper(): v for k, v in mapping.items()}.get(title.upper())
    if credential:
        mods.append(str(credential).upper())
    if appointment.is_telehealth:
        mods.append(TELEHEALTH_MODIFIER)
    return ":".join(dict.fromkeys(mods[:MAX_MODIFIERS]))


def _plan(
    appointment: Appointment,
    *,
    episodes: Sequence[Episode],
    profile: BillingProfile | None,
    rounding: str | None = None,
) -> Plan:
    """Everything a charge of this visit would hold, or each reason it cannot be made (all of
    them, so the unbilled list says everything to fix at once)."""
    plan = Plan(appointment)
    reasons = plan.reasons
    code = appointment.appointment_type.service_code
    if appointment.status != Appointment.Status.COMPLETED:
        reasons.append(Reason("not-completed", "The visit is not completed."))
    if code is None:
        reasons.append(
            Reason(
                "no-service-code",
                f"The visit type {appointment.appointment_type.name!r} has no service code.",
            )
        )
        return plan
    day = _service_date(appointment)
    minutes = int((appointment.end - appointment.start).total_seconds() // 60)
    units = units_for_visit(minutes=minutes, service_code=code, rounding=rounding)
    reservation = appointment.unit_reservation
    authorization = reservation.line.authorization if reservation else None
    if reservation is not None and reservation.state != UnitReservation.State.CONSUMED:
        reasons.append(
            Reason(
                "units-not-consumed",
                f"The visit's {reservation.units} authorization unit(s) are "
                f"{reservation.get_state_display().lower()}, not consumed.",
            )
        )
    elif reservation is not None and authorization is not None and reservation.units != units:
        reasons.append(
            Reason(
                "units-mismatch",
                f"The visit's {minutes} minutes make {units} unit(s) under the clinic's rounding "
                f"but it consumed {reservation.units} of authorization {authorization.number}; "
                "correct the visit or the authorization units first.",
            )
        )
    episode = _episode_for(appointment, day, episodes)
    diagnoses = list(episode.diagnoses.all()) if episode else []
    if episode is None:
        reasons.append(
            Reason(
                "no-episode",
                f"No active episode of care covers {day:%d %b %Y}: add one with its diagnoses.",
            )
        )
    elif not diagnoses:
        reasons.append(
            Reason("no-diagnosis", f"The episode {episode} has no diagnosis: add one (ICD-10-CM).")
        )
    coverage = episode.coverage if episode else None
    if coverage is None and authorization is not None:
        coverage = authorization.coverage
    if coverage is not None and not (
        coverage.is_active
        and coverage.effective_from <= day
        and (coverage.effective_to is None or coverage.effective_to >= day)
    ):
        reasons.append(
            Reason("coverage-not-in-force", f"The coverage {coverage} is not in force on {day}.")
        )
    payer = coverage.payer if coverage else None
    modifiers = _modifiers_for(appointment, profile)
    fee = fee_for(payer=payer, service_code=code, modifiers=modifiers, on=day)
    if fee is None:
        if payer is None:
            reasons.append(
                Reason(
                    "no-coverage-no-self-pay-fee",
                    f"No coverage, and the clinic's self-pay schedule has no fee for {code.code} "
                    f"on {day}.",
                )
            )
        else:
            reasons.append(
                Reason("no-fee", f"{payer}'s fee schedule has no fee for {code.code} on {day}.")
            )
    if payer is not None and code.requires_authorization and authorization is None:
        rules = PayerRules.objects.filter(payer=payer).first()
        if rules is None or rules.requires_authorization:
            reasons.append(
                Reason(
                    "authorization-missing",
                    f"{code.code} needs a prior authorization and the visit drew units from "
                    "none: add the authorization and move the visit's units onto it.",
                )
            )
    practitioner = appointment.practitioner
    if payer is not None and not practitioner.npi:
        reasons.append(
            Reason("no-rendering-npi", f"{practitioner.display_name} has no NPI on file.")
        )
    supervisor = episode.supervising if episode is not None else None
    if payer is not None and supervisor is not None and not supervisor.npi:
        reasons.append(
            Reason(
                "no-supervising-npi",
                f"{supervisor.display_name} supervises the episode but has no NPI on file.",
            )
        )
    if reasons:
        return plan
    assert episode is not None and fee is not None  # no reasons: both were found
    plan.values = {
        "appointment": appointment,
        "patient": appointment.patient,
        "episode": episode,
        "coverage": coverage,
        "payer": payer,
        "fee": fee,
        "service_code": code,
        "service_date": day,
        "units": units,
        "modifiers": modifiers,
        "place_of_service": TELEHEALTH_POS if appointment.is_telehealth else OFFICE,
        "diagnosis_pointers": [d.rank for d in diagnoses[:4]],
        "amount": (fee.charge_per_unit * units).quantize(CENT),
        "expected_allowed": None
        if fee.allowed_per_unit is None
        else (fee.allowed_per_unit * units).quantize(CENT),
        "rendering": practitioner,
        "rendering_npi": practitioner.npi or "",
        "supervising": supervisor,
        "supervising_npi": supervisor.npi if supervisor is not None else "",
        "authorization": authorization,
        "authorization_number": authorization.number if authorization else "",
        "status": Charge.Status.OPEN if payer else Charge.Status.SELF_PAY,
    }
    return plan


def _episodes_of(patient_ids: Iterable[int]) -> dict[int, list[Episode]]:
    out: dict[int, list[Episode]] = {}
    for ep in (
        Episode.objects.filter(patient_id__in=set(patient_ids))
        .select_related("coverage__payer")
        .prefetch_related("diagnoses")
    ):
        out.setdefault(ep.patient_id, []).append(ep)
    return out


def _visits() -> QuerySet[Appointment]:
    return Appointment.objects.select_related(
        "patient",
        "practitioner",
        "appointment_type__service_code",
        "unit_reservation__line__authorization__coverage__payer",
    )


@transaction.atomic
def charges_create_for_visit(*, appointment: Appointment, by=None) -> list[Charge]:
    """The charge of a completed visit (one per visit and code), posted to the ledger.

    Idempotent: a visit already charged returns its live charge. Locks the appointment's row,
    so concurrent runs on one visit queue; the partial unique index
    `charge_one_live_per_visit_and_code` is the guarantee. Refused (409) with every reason
    when the visit cannot be charged, `charge-units-mismatch` when its units disagree with the
    authorization units it consumed."""
    appointment = _visits().select_for_update(of=("self",)).get(pk=appointment.pk)
    live = list(Charge.objects.filter(appointment=appointment).exclude(status=Charge.Status.VOID))
    if live:
        return live
    plan = _plan(
        appointment,
        episodes=_episodes_of([appointment.patient_id]).get(appointment.patient_id, []),
        profile=BillingProfile.objects.filter(pk=1).first(),
    )
    if plan.reasons:
        reasons = [{"code": r.code, "detail": r.detail} for r in plan.reasons]
        error = (
            ChargeUnitsMismatchError
            if any(r.code == "units-mismatch" for r in plan.reasons)
            else VisitNotBillableError
        )
        raise error(" ".join(r.detail for r in plan.reasons), extra={"reasons": reasons})
    try:
        with transaction.atomic():
            charge = Charge.objects.create(created_by=by, **plan.values)
    except IntegrityError as error:
        if constraint_name(error) != "charge_one_live_per_visit_and_code":
            raise
        return list(
            Charge.objects.filter(appointment=appointment).exclude(status=Charge.Status.VOID)
        )
    ledger.charge_post(charge=charge, by=by)
    if charge.payer_id is None:  # the patient owes it: a credit they hold pays it
        credit_apply(patient=charge.patient, by=by)
    return [charge]


@dataclass(frozen=True)
class RunResult:
    created: int
    skipped: int
    failed: dict[int, str]
    charges: list[int]


def charges_create_for_completed(
    *, by=None, appointment_ids: Sequence[int] | None = None
) -> RunResult:
    """Charge every completed visit without a live charge that can be charged (or those of
    `appointment_ids`); each visit in its own transaction, so one refusal stops none of the
    others. What cannot be charged stays on the unbilled list with its reasons."""
    created = skipped = 0
    failed: dict[int, str] = {}
    made: list[int] = []
    for item in unbilled_visits(appointment_ids=appointment_ids):
        if item.reasons:
            skipped += 1
            continue
        try:
            made += [c.pk for c in charges_create_for_visit(appointment=item.appointment, by=by)]
            created += 1
        except ApplicationError as error:
            failed[item.appointment.pk] = error.detail
    return RunResult(created=created, skipped=skipped, failed=failed, charges=made)


@transaction.atomic
def charge_void(*, charge: Charge, reason: str, by=None) -> Charge:
    """Void a charge not on a claim (open or self-pay): it stays, marked void with the reason,
    its ledger entries reversed, and the visit may be charged again. Locks the charge row; a
    billed charge is voided through its claim (409)."""
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why the charge is void."})
    charge = Charge.objects.select_for_update().get(pk=charge.pk)
    if charge.status not in (Charge.Status.OPEN, Charge.Status.SELF_PAY):
        raise ChargeStateError(
            f"The charge is {charge.get_status_display().lower()}; "
            + (
                "void or replace its claim instead."
                if charge.status == Charge.Status.BILLED
                else "it is already void."
            ),
            extra={"status": charge.status},
        )
    charge.status = Charge.Status.VOID
    charge.void_reason = reason.strip()[:300]
    charge.save(update_fields=["status", "void_reason"])
    entries = LedgerEntry.objects.filter(
        charge=charge, kind=LedgerEntry.Kind.CHARGE, reversed_by__isnull=True
    )
    for entry in entries:
        ledger.entry_reverse(entry=entry, memo=f"Charge void: {charge.void_reason}"[:300], by=by)
    return charge


# --- Unbilled visits ----------------------------------------------------------------------------


@dataclass(frozen=True)
class UnbilledVisit:
    appointment: Appointment
    reasons: list[Reason]


def unbilled_visits(
    *,
    patient: Patient | None = None,
    appointment_ids: Sequence[int] | None = None,
    visits: QuerySet[Appointment] | None = None,
) -> list[UnbilledVisit]:
    """Completed visits without a live charge, oldest first, each with the reasons it cannot
    be charged (empty: it can). `visits` narrows the rows (a caller's row scope)."""
    qs = visits if visits is not None else Appointment.objects.all()
    qs = (
        qs.filter(status=Appointment.Status.COMPLETED)
        .filter(~Exists(Charge.objects.filter(appointment=OuterRef("pk")).exclude(status="void")))
        .select_related(
            "patient",
            "practitioner",
            "appointment_type__service_code",
            "unit_reservation__line__authorization__coverage__payer",
        )
        .order_by("start", "id")
    )
    if patient is not None:
        qs = qs.filter(patient=patient)
    if appointment_ids is not None:
        qs = qs.filter(pk__in=appointment_ids)
    rows = list(qs)
    episodes = _episodes_of(a.patient_id for a in rows)
    profile = BillingProfile.objects.filter(pk=1).first()
    rounding = ClinicSettings.load().unit_rounding
    return [
        UnbilledVisit(
            appointment=a,
            reasons=_plan(
                a, episodes=episodes.get(a.patient_id, []), profile=profile, rounding=rounding
            ).reasons,
        )
        for a in rows
    ]


__all__ = [
    "ChargeStateError",
    "ChargeUnitsMismatchError",
    "FeeSpec",
    "Reason",
    "UnbilledVisit",
    "VisitNotBillableError",
    "charge_void",
    "charges_create_for_completed",
    "charges_create_for_visit",
    "episode_create",
    "episode_update",
    "fee_for",
    "fee_schedule_create",
    "fee_schedule_update",
    "icd10_load",
    "unbilled_visits",
]

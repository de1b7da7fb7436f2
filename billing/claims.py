"""Claims: open charges batched into claims, scrubbed, sent in 837P submissions, and moved by
the payer's acknowledgements (999, 277CA).

The claim's lifecycle (billing.models.Claim): draft → ready (scrubbed clean) → submitted →
accepted / rejected → ... A claim is edited only while draft or ready (`ClaimNotEditableError`,
409); once submitted its lines are frozen by a trigger too. A replacement (frequency 7) or void
(frequency 8) is a new draft claim naming the original, which becomes replaced / voided when the
new one is submitted.

Every service here owns its transaction and locks the rows its rule reads: the charges it bills
(`FOR UPDATE`, so two builds never bill one charge twice), the claims it moves. A submission's
ISA/GS/ST control numbers are its id (the clinic schema's own sequence): unique per clinic by
construction, never a counter of ours.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Prefetch, QuerySet, Sum
from django.utils import timezone

from authorizations.models import AuthorizationLine
from clinic.errors import ApplicationError, ConflictError, NotFoundError
from practice.models import Coverage, Patient, Payer, Practitioner

from .models import (
    BillingProfile,
    Charge,
    Claim,
    ClaimLine,
    EpisodeDiagnosis,
    PayerRules,
    Submission,
)
from .signals import claims_status_changed
from .x12 import claims as x12
from .x12.acknowledgements import parse_277ca, parse_999
from .x12.reading import Finding as X12Finding
from .x12.reading import X12Refused
from .x12.scrub import MAX_DIAGNOSES, MAX_LINES, AuthorizationWindow, ClaimRules, scrub

ZERO = Decimal("0.00")
EDITABLE = (Claim.Status.DRAFT, Claim.Status.READY)
# The payer holds these (it gave a claim number): they may be replaced or voided.
REPLACEABLE = (
    Claim.Status.ACCEPTED,
    Claim.Status.PAID,
    Claim.Status.PARTIALLY_PAID,
    Claim.Status.DENIED,
    Claim.Status.APPEALED,
)
APPEALABLE = (Claim.Status.DENIED, Claim.Status.PARTIALLY_PAID, Claim.Status.PAID)
# Claims that no longer bill their charges: their units are free for another claim.
DEAD = (Claim.Status.REJECTED, Claim.Status.REPLACED, Claim.Status.VOIDED)
_SEX = {"female": "F", "male": "M"}
_PRIORITY = {"primary": "P", "secondary": "S", "tertiary": "T"}


# --- Errors -------------------------------------------------------------------------------------


class ClaimNotEditableError(ConflictError):
    code = "claim-not-editable"


class ClaimStateError(ConflictError):
    code = "claim-state"


class ClaimFindingsError(ApplicationError):
    """Claims with findings are not sent: each finding names the field and how to fix it."""

    status = 400
    code = "claim-findings"

    def __init__(self, findings: dict[int, list[dict[str, str]]]):
        count = sum(len(found) for found in findings.values())
        first = next(f for found in findings.values() for f in found)
        super().__init__(
            f"{count} finding(s) stop the submission, e.g. {first['field']}: {first['message']}",
            extra={
                "findings": [
                    {"claim": claim_id, **finding}
                    for claim_id, found in findings.items()
                    for finding in found
                ]
            },
        )


class NothingToBillError(ApplicationError):
    status = 400
    code = "nothing-to-bill"


# --- Building claims from charges ---------------------------------------------------------------


def _coverage_id(charge: Charge) -> int | None:
    return charge.coverage_id or charge.episode.coverage_id


def _group_key(charge: Charge) -> tuple:
    """Charges on one claim share these: one payer, patient and rendering provider (the issue's
    batching), and what an 837P says once per claim: the coverage (2000B), the episode (its
    diagnoses, 2300 HI), the place of service (CLM05-1), the authorization (REF*G1) and the
    supervising provider (2310D)."""
    return (
        charge.payer_id,
        charge.patient_id,
        charge.rendering_id,
        _coverage_id(charge),
        charge.episode_id,
        charge.place_of_service,
        charge.authorization_number,
        charge.supervising_id,
        charge.supervising_npi,
    )


def _chunks(charges: list[Charge]) -> Iterable[list[Charge]]:
    """Claims of at most MAX_LINES lines pointing to at most MAX_DIAGNOSES diagnoses."""
    chunk: list[Charge] = []
    ranks: set[int] = set()
    for charge in charges:
        more = ranks | set(charge.diagnosis_pointers)
        if chunk and (len(chunk) == MAX_LINES or len(more) > MAX_DIAGNOSES):
            yield chunk
            chunk, more = [], set(charge.diagnosis_pointers)
        chunk.append(charge)
        ranks = more
    if chunk:
        yield chunk


@transaction.atomic
def claims_build(
    *,
    charges: Sequence[int] | None = None,
    payer: Payer | None = None,
    patient: Patient | None = None,
    by=None,
) -> list[Claim]:
    """Draft claims from open insured charges (all of them, or those named, of `payer`,
    of `patient`), batched per payer + patient + rendering provider (and coverage, episode,
    place of service, authorization and supervising provider, which a claim states once),
    split at 50 lines and 12 diagnoses. The charges become `billed`.

    Locks the charges (`FOR UPDATE`): a concurrent build waits, then finds them billed and
    skips them, so a charge is never on two drafts. `NothingToBillError` (400) when no open
    insured charge matches."""
    rows = Charge.objects.select_for_update(of=("self",)).filter(
        status=Charge.Status.OPEN, payer__isnull=False
    )
    if charges is not None:
        rows = rows.filter(pk__in=list(charges))
    if payer is not None:
        rows = rows.filter(payer=payer)
    if patient is not None:
        rows = rows.filter(patient=patient)
    found = list(
        rows.select_related("episode").order_by(
            "payer_id", "patient_id", "rendering_id", "service_date", "id"
        )
    )
    groups: dict[tuple, list[Charge]] = {}
    for charge in found:
        if _coverage_id(charge) is not None:
            groups.setdefault(_group_key(charge), []).append(charge)
    if not groups:
        raise NothingToBillError(
            "No open charge to a payer matches: charges are billed once, self-pay ones are the "
            "patient's.",
            extra={"field": "charges"},
        )
    chunks: list[tuple[tuple, list[Charge]]] = [
        (key, chunk)
        for key, group in sorted(groups.items(), key=lambda item: item[1][0].pk)
        for chunk in _chunks(group)
    ]
    built = Claim.objects.bulk_create(
        Claim(
            patient_id=patient_id,
            payer_id=payer_id,
            coverage_id=coverage_id,
            episode_id=episode_id,
            rendering_id=rendering_id,
            supervising_id=supervising_id,
            supervising_npi=supervising_npi,
            total_charge=sum((c.amount for c in chunk), ZERO),
        )
        for (
            payer_id,
            patient_id,
            rendering_id,
            coverage_id,
            episode_id,
            _,
            _,
            supervising_id,
            supervising_npi,
        ), chunk in chunks  # fmt: skip
    )
    ClaimLine.objects.bulk_create(
        ClaimLine(claim=claim, charge=c, number=n, amount=c.amount, units=c.units)
        for claim, (_, chunk) in zip(built, chunks, strict=True)
        for n, c in enumerate(chunk, start=1)
    )
    billed = [c.pk for _, chunk in chunks for c in chunk]
    Charge.objects.filter(pk__in=billed).update(status=Charge.Status.BILLED)
    return built


def _lock(claim: Claim) -> Claim:
    return Claim.objects.select_for_update().get(pk=claim.pk)


@dataclass(frozen=True)
class LineChange:
    """A kept line of a draft claim, with what may change: its units and amount."""

    id: int
    units: int | None = None
    amount: Decimal | None = None


@transaction.atomic
def claim_update(*, claim: Claim, lines: Sequence[LineChange]) -> Claim:
    """Change a draft or ready claim's lines: `lines` is the whole set (a line left out is
    removed and its charge open again; units and amounts may change). The claim goes back to
    draft, its total follows its lines, its findings are cleared until the next scrub.
    `ClaimNotEditableError` (409) once submitted (the lines' trigger refuses it too)."""
    claim = _lock(claim)
    if claim.status not in EDITABLE:
        raise ClaimNotEditableError(
            f"Claim {claim.control_number} is {claim.get_status_display().lower()}: a submitted "
            "claim is never edited; replace or void it instead.",
            extra={"status": claim.status},
        )
    current = {line.pk: line for line in claim.lines.select_for_update()}
    wanted = {change.id: change for change in lines}
    unknown = sorted(set(wanted) - set(current))
    if unknown:
        raise ApplicationError(
            f"Line(s) {', '.join(map(str, unknown))} are not this claim's.",
            extra={"field": "lines"},
        )
    if not wanted:
        raise ApplicationError("A claim keeps at least one line.", extra={"field": "lines"})
    removed = [line for pk, line in current.items() if pk not in wanted]
    if removed and claim.frequency == Claim.Frequency.ORIGINAL:
        Charge.objects.filter(pk__in=[line.charge_id for line in removed]).update(
            status=Charge.Status.OPEN
        )
    ClaimLine.objects.filter(pk__in=[line.pk for line in removed]).delete()
    for number, pk in enumerate(sorted(wanted, key=lambda pk: current[pk].number), start=1):
        line, change = current[pk], wanted[pk]
        line.number = number
        line.units = change.units if change.units is not None else line.units
        line.amount = change.amount if change.amount is not None else line.amount
        line.save(update_fields=["number", "units", "amount"])
    claim.total_charge = claim.lines.aggregate(total=Sum("amount"))["total"] or ZERO
    claim.status, claim.findings = Claim.Status.DRAFT, []
    claim.save(update_fields=["total_charge", "status", "findings", "updated_at"])
    return claim


# --- Mapping a claim to the 837P's values -------------------------------------------------------


def _plain(text: str) -> str:
    """`text` in X12's character set: accents dropped (Gráinne Ó Briain → Grainne O Briain),
    as payers and clearinghouses expect; pyx12 refuses an AN element holding "í"."""
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'"))
    return (
        "".join(c for c in decomposed if not unicodedata.combining(c))
        .encode("ascii", "ignore")
        .decode()
    )


# Titles a display name may start with, and the particles that belong to a surname.
_TITLES = {"dr", "dr.", "mr", "mr.", "mrs", "mrs.", "ms", "ms.", "prof", "prof."}
_PARTICLES = {"ní", "nic", "ó", "ua", "mac", "mc", "de", "del", "della", "di", "da", "du", "la",
              "le", "van", "von", "der", "den", "st", "st."}  # fmt: skip


def _split_name(name: str) -> tuple[str, str]:
    """(last, first) of "Last, First" or "[Title] First Middle [particle] Last", in X12's
    character set: "Dr. Gráinne Ní Bhriain" → ("Ni Bhriain", "Grainne")."""
    if "," in name:
        last, first = name.split(",", 1)
        return _plain(last.strip()), _plain(first.strip())
    parts = name.split()
    while len(parts) > 2 and parts[0].lower() in _TITLES:
        parts = parts[1:]
    if not parts:
        return "", ""
    cut = len(parts) - 1
    while cut > 1 and parts[cut - 1].lower() in _PARTICLES:
        cut -= 1
    return _plain(" ".join(parts[cut:])), _plain(" ".join(parts[:cut]))


def _address(owner: Any) -> x12.Address:
    return x12.Address(
        line1=_plain(owner.address_line1),
        line2=_plain(owner.address_line2),
        city=_plain(owner.city),
        state=owner.state,
        postal_code=owner.postal_code,
        country=owner.country,
    )


def _finding(code: str, field: str, location: str, message: str) -> dict[str, str]:
    return {"code": code, "field": field, "location": location, "message": message}


# Where an address names a state (X12 N402); elsewhere N404 names the country instead.
STATE_COUNTRIES = ("US", "CA")


def _profile_findings(profile: BillingProfile | None) -> list[dict[str, str]]:
    if profile is None:
        return [
            _finding(
                "billing-profile-missing",
                "billing_profile",
                "1000A, 2010AA",
                "The clinic has no billing profile: fill in its name, group NPI, tax id, "
                "address and clearinghouse ids in the admin's Billing profile.",
            )
        ]
    required = {
        "legal_name": ("2010AA NM103", "the clinic's legal name"),
        "npi": ("2010AA NM109", "the group NPI"),
        "tax_id": ("2010AA REF02 (EI)", "the tax id (EIN, nine digits)"),
        "address_line1": ("2010AA N301", "the street address"),
        "city": ("2010AA N401", "the city"),
        "state": ("2010AA N402", "the two-letter state"),
        "postal_code": ("2010AA N403", "the postal code"),
        "contact_name": ("1000A PER02", "the billing contact's name"),
        "contact_phone": ("1000A PER04", "the billing contact's phone"),
        "submitter_id": ("ISA06, 1000A NM109", "our id at the clearinghouse"),
        "receiver_name": ("1000B NM103", "the clearinghouse's name"),
        "receiver_id": ("ISA08, 1000B NM109", "the clearinghouse's id"),
    }
    if profile.country not in STATE_COUNTRIES:
        del required["state"]
    return [
        _finding(
            "billing-profile-incomplete",
            f"billing_profile.{name}",
            location,
            f"The billing profile lacks {what}: fill it in in the admin's Billing profile.",
        )
        for name, (location, what) in required.items()
        if not getattr(profile, name)
    ]


def _patient_findings(patient: Patient, coverage: Coverage) -> list[dict[str, str]]:
    found = []
    for name in ("address_line1", "city", "state", "postal_code"):
        if name == "state" and patient.country not in STATE_COUNTRIES:
            continue
        if not getattr(patient, name):
            found.append(
                _finding(
                    "subscriber-address",
                    f"patient.{name}",
                    "2010BA N3/N4",
                    f"The patient's {name.replace('_', ' ')} is empty: payers need the "
                    "subscriber's address; complete the patient's record.",
                )
            )
    if not coverage.member_id:
        found.append(
            _finding(
                "member-id-missing",
                "coverage.member_id",
                "2010BA NM109",
                "The coverage has no member id: copy it from the insurance card.",
            )
        )
    return found


def _provider(practitioner: Practitioner | None, npi: str) -> x12.Provider | None:
    if practitioner is None and not npi:
        return None
    last, first = _split_name(practitioner.display_name if practitioner else "")
    return x12.Provider(last_name=last, first_name=first, npi=npi)


@dataclass
class _Mapped:
    claim: x12.Claim
    rules: ClaimRules
    findings: list[dict[str, str]] = field(default_factory=list)


@dataclass
class _Context:
    """What mapping a set of claims reads, fetched for all of them at once (a 1,000-claim
    submission costs a handful of queries, not a few per claim)."""

    profile: BillingProfile | None
    lines: dict[int, list[ClaimLine]]  # by claim
    diagnoses: dict[int, dict[int, str]]  # by episode: rank -> code
    payer_rules: dict[int, PayerRules]  # by payer
    authorized: dict[int, list[tuple[int, set[int]]]]  # by authorization: (units, code ids)
    billed: dict[int, list[tuple[int, int, int]]]  # by authorization: (claim, code id, units)


def _context(claims: Sequence[Claim]) -> _Context:
    ids = [claim.pk for claim in claims]
    lines: dict[int, list[ClaimLine]] = defaultdict(list)
    for line in (
        ClaimLine.objects.filter(claim_id__in=ids)
        .select_related("charge__service_code", "charge__supervising", "charge__authorization")
        .order_by("claim_id", "number")
    ):
        lines[line.claim_id].append(line)
    diagnoses: dict[int, dict[int, str]] = defaultdict(dict)
    for diagnosis in EpisodeDiagnosis.objects.filter(
        episode_id__in={claim.episode_id for claim in claims}
    ):
        diagnoses[diagnosis.episode_id][diagnosis.rank] = diagnosis.code
    authorizations = {
        line.charge.authorization_id
        for found in lines.values()
        for line in found
        if line.charge.authorization_id
    }
    authorized: dict[int, list[tuple[int, set[int]]]] = defaultdict(list)
    for authorization_line in AuthorizationLine.objects.filter(
        authorization_id__in=authorizations
    ).prefetch_related("service_codes"):
        authorized[authorization_line.authorization_id].append(
            (
                authorization_line.units_authorized,
                {code.pk for code in authorization_line.service_codes.all()},
            )
        )
    billed: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for row in (
        ClaimLine.objects.filter(charge__authorization_id__in=authorizations)
        .exclude(claim__status__in=DEAD)
        .exclude(claim__frequency=Claim.Frequency.VOID)
        .values("charge__authorization_id", "claim_id", "charge__service_code_id")
        .annotate(units=Sum("units"))
    ):
        billed[row["charge__authorization_id"]].append(
            (row["claim_id"], row["charge__service_code_id"], row["units"])
        )
    return _Context(
        profile=BillingProfile.objects.filter(pk=1).first(),
        lines=lines,
        diagnoses=diagnoses,
        payer_rules={
            rules.payer_id: rules
            for rules in PayerRules.objects.filter(payer_id__in={c.payer_id for c in claims})
        },
        authorized=authorized,
        billed=billed,
    )


def _units_left(
    claim: Claim, lines: list[ClaimLine], context: _Context
) -> AuthorizationWindow | None:
    """The authorization the claim bills under, with the units it has left for this claim:
    what its lines authorize for the claim's codes, less what other live claims bill under it
    (the claim this one replaces does not count: its units are the ones billed again)."""
    authorization = next(
        (line.charge.authorization for line in lines if line.charge.authorization_id), None
    )
    if authorization is None:
        return None
    codes = {line.charge.service_code_id for line in lines}
    authorized = sum(
        units for units, covered in context.authorized[authorization.pk] if covered & codes
    )
    billed = sum(
        units
        for claim_id, code, units in context.billed[authorization.pk]
        if claim_id not in (claim.pk, claim.replaces_id) and code in codes
    )
    return AuthorizationWindow(
        number=authorization.number,
        start=authorization.start_date,
        end=authorization.end_date,
        units_left=Decimal(authorized - billed),
    )


def _map(claim: Claim, context: _Context) -> _Mapped:
    """The claim as the 837P's values, the scrubber's rules for it, and what our data lacks
    for the file (findings naming our fields)."""
    lines = context.lines[claim.pk]
    diagnoses = context.diagnoses[claim.episode_id]
    ranks = sorted({rank for line in lines for rank in line.charge.diagnosis_pointers})
    findings = []
    for rank in ranks:
        if rank not in diagnoses:
            findings.append(
                _finding(
                    "diagnosis-rank-missing",
                    "episode.diagnoses",
                    "2300 HI",
                    f"A line points to diagnosis {rank} but the episode has no diagnosis "
                    f"ranked {rank}: add it to the episode or correct the charge's pointers.",
                )
            )
    ranks = [rank for rank in ranks if rank in diagnoses]
    position = {rank: index for index, rank in enumerate(ranks, start=1)}
    coverage, patient = claim.coverage, claim.patient
    findings += _patient_findings(patient, coverage)
    first = lines[0].charge if lines else None
    rendering = claim.rendering
    referring = None
    episode = claim.episode
    if episode.referring_provider_npi:
        last, first_name = _split_name(episode.referring_provider_name)
        referring = x12.Provider(last, first_name, episode.referring_provider_npi)
    original = claim.replaces.payer_claim_number if claim.replaces is not None else ""
    mapped = x12.Claim(
        claim_id=claim.control_number,
        total_charge=claim.total_charge,
        place_of_service=first.place_of_service if first else "11",
        subscriber=x12.Subscriber(
            last_name=_plain(patient.last_name),
            first_name=_plain(patient.first_name),
            member_id=coverage.member_id,
            address=_address(patient),
            birth_date=patient.date_of_birth,
            sex=_SEX.get(patient.sex, "U"),
            group_number=coverage.group_number,
            payer_responsibility=_PRIORITY.get(coverage.priority, "P"),
        ),
        payer=x12.Payer(
            name=_plain(claim.payer.name),
            payer_id=claim.payer.edi_payer_id,
            filing_indicator=claim.payer.claim_filing_code,
        ),
        diagnoses=tuple(diagnoses[rank] for rank in ranks),
        lines=tuple(
            x12.ServiceLine(
                line_ref=str(line.pk),
                procedure_code=line.charge.service_code.code,
                charge=line.amount,
                units=Decimal(line.units),
                service_date=line.charge.service_date,
                diagnosis_pointers=tuple(
                    position.get(rank, 0) for rank in line.charge.diagnosis_pointers
                ),
                modifiers=tuple(m for m in line.charge.modifiers.split(":") if m),
            )
            for line in lines
        ),
        frequency_code=claim.frequency,
        original_claim_ref=original,
        prior_authorization=first.authorization_number if first else "",
        referring=referring,
        rendering=_provider(
            rendering, (first.rendering_npi if first else "") or rendering.npi or ""
        ),
        supervising=(
            _provider(claim.supervising, claim.supervising_npi or claim.supervising.npi or "")
            if claim.supervising is not None
            else None
        ),
    )
    payer_rules = context.payer_rules.get(claim.payer_id)
    profile = context.profile
    filing = (payer_rules.timely_filing_days if payer_rules else None) or (
        profile.timely_filing_days if profile else None
    )
    # The payer's rule applies to the codes that need an authorization (ServiceCode's flag):
    # a cardiology visit billed to a payer that authorizes therapy needs none.
    needs_authorization = any(line.charge.service_code.requires_authorization for line in lines)
    rules = ClaimRules(
        payer_requires_authorization=needs_authorization
        and (payer_rules.requires_authorization if payer_rules else True),
        authorization=_units_left(claim, lines, context),
        filing_limit_days=filing,
    )
    return _Mapped(mapped, rules, findings)


def _batch(
    profile: BillingProfile, claims: Sequence[x12.Claim], *, number: int, now: datetime
) -> x12.ClaimBatch:
    local = timezone.localtime(now)
    return x12.ClaimBatch(
        submitter=x12.Submitter(
            name=_plain(profile.legal_name),
            identifier=profile.submitter_id,
            contact_name=_plain(profile.contact_name),
            phone=profile.contact_phone,
            interchange_id=profile.submitter_id,
        ),
        receiver=x12.Receiver(
            name=_plain(profile.receiver_name),
            identifier=profile.receiver_id,
            interchange_id=profile.receiver_id,
        ),
        billing_provider=x12.BillingProvider(
            name=_plain(profile.legal_name),
            npi=profile.npi,
            tin=profile.tax_id,
            address=_address(profile),
            taxonomy=profile.taxonomy,
        ),
        claims=tuple(claims),
        interchange_control_number=number,
        group_control_number=number,
        transaction_control_number=number,
        reference=f"S{number}",
        created_on=local.date(),
        created_at=local.time().replace(second=0, microsecond=0),
        production=profile.production,
    )


def _scrub_findings(
    mapped: _Mapped, *, today: date, profile: BillingProfile | None
) -> list[dict[str, str]]:
    findings = _profile_findings(profile) + mapped.findings
    if profile is None:
        return findings
    batch = _batch(profile, [mapped.claim], number=1, now=timezone.now())
    for found in scrub(batch, submission_date=today, rules={mapped.claim.claim_id: mapped.rules}):
        if found.field.startswith("billing_provider") and any(
            f["field"] == "billing_profile.npi" for f in findings
        ):
            continue  # said once: the profile has no NPI
        findings.append(
            _finding(found.code, found.field.removeprefix("claims[0]."), found.location,
                     found.message)
        )  # fmt: skip
    if not findings:
        try:
            x12.build_837p(batch)
        except x12.X12FormatError as error:  # a delimiter in a name, an id too long
            findings.append(
                _finding(
                    "x12-format",
                    "claim",
                    error.segment or "837P",
                    f"{error}: correct the record that holds it.",
                )
            )
    return findings


@transaction.atomic
def claim_scrub(*, claim: Claim, today: date | None = None) -> Claim:
    """Check a draft or ready claim with our scrubber (billing.x12.scrub: totals, pointers,
    NPIs, authorization window and units left, 50 lines / 12 diagnoses, timely filing by the
    payer's rules or the clinic's) and what the 837P needs of our records. The findings are
    stored on the claim; it is `ready` when there are none, `draft` otherwise. 409 once
    submitted. `today` is the submission date the filing limit is measured to (the clinic's
    date by default)."""
    claim = _lock(claim)
    if claim.status not in EDITABLE:
        raise ClaimNotEditableError(
            f"Claim {claim.control_number} is {claim.get_status_display().lower()}: only a draft "
            "or ready claim is scrubbed.",
            extra={"status": claim.status},
        )
    claim = Claim.objects.select_related(
        "patient", "payer", "coverage", "episode", "rendering", "supervising", "replaces"
    ).get(pk=claim.pk)
    context = _context([claim])
    findings = _scrub_findings(
        _map(claim, context), today=today or timezone.localdate(), profile=context.profile
    )
    claim.findings = findings
    claim.status = Claim.Status.DRAFT if findings else Claim.Status.READY
    claim.save(update_fields=["findings", "status", "updated_at"])
    return claim


# --- Submitting ---------------------------------------------------------------------------------


@transaction.atomic
def claims_submit(*, claims: Sequence[Claim], by=None, now: datetime | None = None) -> Submission:
    """Send draft or ready claims in one 837P submission (its id is the file's ISA13, GS06
    and ST02, and BHT03 is "S<id>"). Each claim is scrubbed again at the moment of sending;
    any finding refuses the whole submission (`ClaimFindingsError`, 400, listing each claim's
    findings with the field and the fix) and nothing changes. The claims become `submitted`
    (their lines frozen by the trigger); the originals of replacements and voids become
    `replaced` / `voided`.

    Locks the claims in id order (`FOR UPDATE`): a claim is submitted once; a second submit of
    it waits, then finds it submitted (`ClaimNotEditableError`, 409)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    ids = sorted({claim.pk for claim in claims})
    if not ids:
        raise ApplicationError("Name the claims to submit.", extra={"field": "claims"})
    locked = list(
        Claim.objects.select_for_update(of=("self",))
        .select_related(
            "patient", "payer", "coverage", "episode", "rendering", "supervising", "replaces"
        )
        .filter(pk__in=ids)
        .order_by("id")
    )
    missing = sorted(set(ids) - {claim.pk for claim in locked})
    if missing:
        raise NotFoundError(f"No claim {', '.join(map(str, missing))}.", extra={"field": "claims"})
    sent = [claim for claim in locked if claim.status not in EDITABLE]
    if sent:
        raise ClaimNotEditableError(
            "Already sent: "
            + ", ".join(f"{c.control_number} ({c.status})" for c in sent)
            + ". A submitted claim is never sent again: replace or void it.",
            extra={"claims": [c.pk for c in sent]},
        )
    mapped: dict[int, _Mapped] = {}
    refused: dict[int, list[dict[str, str]]] = {}
    context = _context(locked)
    for claim in locked:
        mapped[claim.pk] = _map(claim, context)
        findings = _scrub_findings(mapped[claim.pk], today=today, profile=context.profile)
        if findings:
            refused[claim.pk] = findings
    if refused:
        raise ClaimFindingsError(refused)
    profile = context.profile
    assert profile is not None  # else every claim had the profile's finding
    # One 2000B run per subscriber and payer: claims of one patient and payer side by side.
    order = sorted(locked, key=lambda c: (c.payer_id, c.patient_id, c.coverage_id, c.pk))
    submission = Submission.objects.create(
        x12="",
        claim_count=len(order),
        total_charge=sum((c.total_charge for c in order), ZERO),
        created_by=by,
    )
    batch = _batch(profile, [mapped[c.pk].claim for c in order], number=submission.pk, now=now)
    submission.x12 = x12.build_837p(batch)
    submission.save(update_fields=["x12"])
    Claim.objects.filter(pk__in=ids).update(
        status=Claim.Status.SUBMITTED,
        submission=submission,
        submitted_at=now,
        findings=[],
        updated_at=now,
    )
    claims_status_changed.send(sender=Claim, claim_ids=ids, status=Claim.Status.SUBMITTED)
    for claim in locked:
        if claim.replaces_id is not None:
            Claim.objects.filter(pk=claim.replaces_id).update(
                status=Claim.Status.VOIDED
                if claim.frequency == Claim.Frequency.VOID
                else Claim.Status.REPLACED,
                status_reason=f"{claim.get_frequency_display()} {claim.control_number} sent",
                updated_at=now,
            )
    return submission


# --- Replacing, voiding, appealing --------------------------------------------------------------


@transaction.atomic
def claim_correct(*, claim: Claim, frequency: str, reason: str = "", by=None) -> Claim:
    """A draft replacement (frequency 7) or void (8) of a claim the payer holds (it gave a
    claim number: REF*F8 names it), with the original's lines and charges. The original is
    locked; one correction at a time: a draft or sent one not rejected refuses another (409).
    The original becomes replaced / voided when the correction is submitted."""
    if frequency not in (Claim.Frequency.REPLACEMENT, Claim.Frequency.VOID):
        raise ApplicationError(
            "Frequency is 7 (replace) or 8 (void).", extra={"field": "frequency"}
        )
    original = _lock(claim)
    what = "replaced" if frequency == Claim.Frequency.REPLACEMENT else "voided"
    if original.status not in REPLACEABLE:
        raise ClaimStateError(
            f"Claim {original.control_number} is {original.get_status_display().lower()}: only a "
            f"claim the payer accepted can be {what} (a rejected one is corrected and sent anew).",
            extra={"status": original.status},
        )
    if not original.payer_claim_number:
        raise ClaimStateError(
            f"Claim {original.control_number} has no payer claim number yet (from the 277CA or "
            f"the 835): a {what} claim names it in REF*F8.",
            extra={"field": "payer_claim_number"},
        )
    pending = original.replacements.exclude(status__in=DEAD).first()
    if pending is not None:
        raise ClaimStateError(
            f"Claim {original.control_number} already has correction {pending.control_number} "
            f"({pending.status}).",
            extra={"claim": pending.pk},
        )
    correction = Claim.objects.create(
        patient_id=original.patient_id,
        payer_id=original.payer_id,
        coverage_id=original.coverage_id,
        episode_id=original.episode_id,
        rendering_id=original.rendering_id,
        supervising_id=original.supervising_id,
        supervising_npi=original.supervising_npi,
        frequency=frequency,
        replaces=original,
        total_charge=original.total_charge,
        status_reason=reason,
    )
    ClaimLine.objects.bulk_create(
        ClaimLine(
            claim=correction, charge_id=line.charge_id, number=line.number, amount=line.amount,
            units=line.units,
        )
        for line in original.lines.order_by("number")
    )  # fmt: skip
    return correction


@transaction.atomic
def claim_appeal(*, claim: Claim, note: str, by=None) -> Claim:
    """Mark a denied or (partially) paid claim appealed, with the biller's note."""
    claim = _lock(claim)
    if claim.status not in APPEALABLE:
        raise ClaimStateError(
            f"Claim {claim.control_number} is {claim.get_status_display().lower()}: only a denied "
            "or paid claim is appealed.",
            extra={"status": claim.status},
        )
    claim.status, claim.status_reason = Claim.Status.APPEALED, note
    claim.save(update_fields=["status", "status_reason", "updated_at"])
    return claim


# --- Acknowledgements (999, 277CA) --------------------------------------------------------------


@dataclass
class AcknowledgementResult:
    kind: str  # "999" or "277CA"
    claims: list[Claim] = field(default_factory=list)  # the claims moved
    unmatched: list[str] = field(default_factory=list)  # control numbers / claim ids not ours


def _kind(text: str) -> str:
    """999 or 277CA, by the functional group (GS01 FA / HN)."""
    head = text.lstrip()[:400]
    if not head.startswith("ISA") or len(head) < 106:
        raise X12Refused([X12Finding("ISA", 0, "not an X12 interchange (no ISA segment)")])
    element = head[3]
    start = head.find("GS" + element)
    kind = head[start + 3 : start + 5] if start >= 0 else ""
    if kind == "FA":
        return "999"
    if kind == "HN":
        return "277CA"
    raise X12Refused(
        [X12Finding("GS", 0, "expected a 999 (GS01 FA) or a 277CA (GS01 HN) acknowledgement")]
    )


def _reject_charges(claims: Iterable[Claim]) -> None:
    """A rejected original never reached adjudication: its charges are open again, to be
    billed on a corrected claim."""
    originals = [c.pk for c in claims if c.frequency == Claim.Frequency.ORIGINAL]
    Charge.objects.filter(claim_lines__claim_id__in=originals, status=Charge.Status.BILLED).update(
        status=Charge.Status.OPEN
    )


def _claim_id(text: str) -> int | None:
    return int(text[1:]) if text[:1] == "C" and text[1:].isdigit() else None


@transaction.atomic
def acknowledgement_import(*, text: str, by=None) -> AcknowledgementResult:
    """Read a 999 or a 277CA and move our claims. A 999 answers a submission (AK202 = our
    ST02 = the submission's id): accepted (A, E) moves its submitted claims to `accepted`,
    rejected to `rejected` with the segment errors. A 277CA answers claim by claim (TRN02 = our
    CLM01): accepted keeps the payer's claim number, rejected says why. A malformed file is
    `X12Refused` (400 naming the segment) and nothing changes; numbers that are not ours are
    returned as unmatched. Moves only forward (a replayed file changes nothing); locks the
    claims it moves."""
    kind = _kind(text)
    result = AcknowledgementResult(kind=kind)
    if kind == "999":
        for group in parse_999(text):
            for answer in group.transactions:
                number = int(answer.control_number) if answer.control_number.isdigit() else 0
                submission = Submission.objects.select_for_update().filter(pk=number).first()
                if submission is None:
                    result.unmatched.append(answer.control_number)
                    continue
                if submission.acknowledgement == Submission.Acknowledgement.AWAITING:
                    submission.acknowledgement = (
                        Submission.Acknowledgement.ACCEPTED
                        if answer.accepted
                        else Submission.Acknowledgement.REJECTED
                    )
                    submission.save(update_fields=["acknowledgement"])
                moved = list(
                    submission.claims.select_for_update().filter(status=Claim.Status.SUBMITTED)
                )
                reason = (
                    f"999 {answer.code}: accepted"
                    if answer.accepted
                    else "999 rejected: " + "; ".join(answer.reasons or answer.syntax_errors)
                )
                status = Claim.Status.ACCEPTED if answer.accepted else Claim.Status.REJECTED
                for claim in moved:
                    claim.status, claim.status_reason = status, reason[:500]
                    claim.save(update_fields=["status", "status_reason", "updated_at"])
                if not answer.accepted:
                    _reject_charges(moved)
                if moved:
                    claims_status_changed.send(
                        sender=Claim, claim_ids=[c.pk for c in moved], status=status
                    )
                result.claims += moved
        return result
    for ack in parse_277ca(text):
        for one in ack.claims:
            pk = _claim_id(one.claim_id)
            found = (
                Claim.objects.select_for_update()
                .filter(pk=pk, status__in=(Claim.Status.SUBMITTED, Claim.Status.ACCEPTED))
                .first()
                if pk is not None
                else None
            )
            if found is None:
                if pk is None or not Claim.objects.filter(pk=pk).exists():
                    result.unmatched.append(one.claim_id)
                continue
            claim = found
            reason = "277CA: " + "; ".join(one.reasons)
            if one.rejected:
                claim.status = Claim.Status.REJECTED
                _reject_charges([claim])
            elif one.accepted:
                claim.status = Claim.Status.ACCEPTED
            else:
                continue  # pending: nothing to move
            claim.status_reason = reason[:500]
            claim.payer_claim_number = one.payer_claim_number or claim.payer_claim_number
            claim.save(
                update_fields=["status", "status_reason", "payer_claim_number", "updated_at"]
            )
            claims_status_changed.send(sender=Claim, claim_ids=[claim.pk], status=claim.status)
            result.claims.append(claim)
    return result


# --- Reads --------------------------------------------------------------------------------------


def claim_list() -> QuerySet[Claim]:
    """Claims with what a list shows in one query (patient, payer, rendering provider, line
    count): the list and the admin's."""
    return Claim.objects.select_related("patient", "payer", "rendering").order_by("-id")


def claim_page() -> QuerySet[Claim]:
    """The API's claims list: each claim's own columns with only its patient's and payer's
    names (the list shows the rendering provider by id): narrower rows, a third fewer model
    instances per page than `claim_list`."""
    own = [field.name for field in Claim._meta.concrete_fields]
    return (
        Claim.objects.select_related("patient", "payer")
        .only(*own, "patient__first_name", "patient__last_name", "payer__name")
        .order_by("-id")
    )


def claim_detail() -> QuerySet[Claim]:
    """A claim with its lines and their charges (two queries whatever the line count)."""
    lines = ClaimLine.objects.select_related("charge__service_code").order_by("number")
    return claim_list().prefetch_related(Prefetch("lines", queryset=lines))

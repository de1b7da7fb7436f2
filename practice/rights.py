"""A patient's rights over their data: a copy of everything the clinic holds about them, and
erasure as anonymisation.

**Export** (GDPR Art. 15 and 20, LGPD Art. 18, HIPAA §164.524): `patient_export` builds one
JSON document (`EXPORT_FORMAT`, version `EXPORT_VERSION`; its keys are stable and listed in
the README) and `patient_export_pdf` a human-readable summary of it. practice holds the
patient, their account and coverage; the apps built on practice (authorizations, scheduling)
add their part by registering a `PatientDataPart` when Django starts, as they add search
extensions: practice may not import them (docs/architecture.md). The patient's own copy leaves
out what staff write or decide about their records (each part names those keys, the same the
API's serializers name in `staff_only_fields`); staff get the whole. It lists who opened the
record (the audit trail's events for the patient), and is itself an `export` event.

**Erasure** (GDPR Art. 17 with the exception of Art. 17(3)(b) and (e): records the clinic must
keep by law): `patient_erase` anonymises the patient (name, contact details, address, the
birth date but for its year) and closes their account, cancels their future visits and
blanks the free text written about them, while keeping what billing and the audit trail must
keep: visits' dates, codes and units, authorizations and their ledger, coverage (member ids
are what claims and remittances match on), and the erasure's own record. Rows refer to the
patient by id only. It is irreversible and happens once (`erasure_once_per_patient`). A
patient asks for it from their pages (`erasure_request`); the clinic, which must weigh its
retention duties first, carries it out or declines it with a reason. The erasure is a `delete`
event of the audit trail (the fields it emptied, never their values), whose events name the
patient by id and are kept.
"""

import json
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from accounts.models import User
from audit import services as audit
from audit.models import AuditEvent
from clinic.errors import ConflictError
from clinic.tenancy import tenant_connection

from .models import Coverage, ErasureRequest, Guardian, Patient, PatientConsent
from .services import files_delete

logger = logging.getLogger(__name__)

EXPORT_FORMAT = "clinic.patient-data"
EXPORT_VERSION = 1
# HIPAA's Safe Harbor (§164.514(b)(2)(i)(C)) keeps the year of birth, but ages over 89
# only as "90 or older": an erased birth date keeps its year, never more than this far back.
OLDEST_KEPT_AGE = 90
ERASED_FIRST_NAME = "Erased"
ERASED_EMAIL_DOMAIN = "erased.invalid"  # RFC 2606: never delivered
ERASURE_CANCEL_REASON = "Patient data erased"

Row = dict[str, Any]


class AlreadyErasedError(ConflictError):
    code = "already-erased"
    title = "Already erased"


class ErasurePendingError(ConflictError):
    code = "erasure-pending"
    title = "Erasure already requested"


@dataclass(frozen=True)
class ExportContext:
    """What every part of one export shares: who reads it, and the clinic's time zone, in
    which every time is written."""

    staff: bool
    zone: ZoneInfo

    def time(self, moment: datetime | None) -> str | None:
        return moment.astimezone(self.zone).isoformat() if moment else None


@dataclass(frozen=True)
class PatientDataPart:
    """What one app holds about a patient.

    `export(patient, context)` returns the part's rows (JSON-ready dicts) under the export's
    key `name`; `staff_only` are keys of each row left out of the patient's own copy;
    `columns` are (key, heading) pairs the PDF summary prints, a dotted key reaching into a
    nested dict. `erase(patient, by=..., now=...)`, if any, anonymises or releases the app's
    rows within the erasure's transaction and returns counts of what it did."""

    name: str
    title: str
    export: Callable[[Patient, ExportContext], list[Row]]
    columns: tuple[tuple[str, str], ...]
    staff_only: tuple[str, ...] = ()
    erase: Callable[..., dict[str, int]] | None = None


_parts: dict[str, PatientDataPart] = {}


def patient_data_register(part: PatientDataPart) -> None:
    """Add (or replace, by name) an app's part of the export and the erasure."""
    _parts[part.name] = part


def patient_data_parts() -> tuple[PatientDataPart, ...]:
    return (*_own_parts(), *_parts.values())


# --- Export ------------------------------------------------------------------------------------


def _clinic() -> dict[str, str]:
    """The clinic whose schema is in use: the request's, or (a task, a test) looked up."""
    tenant = tenant_connection.tenant
    if not hasattr(tenant, "timezone"):
        from tenants.models import Clinic

        tenant = Clinic.objects.filter(schema_name=tenant_connection.schema_name).first()
    if tenant is None:
        return {"name": "", "slug": tenant_connection.schema_name, "timezone": "UTC"}
    return {"name": tenant.name, "slug": tenant.slug, "timezone": tenant.timezone}


def _patient_rows(patient: Patient, context: ExportContext) -> list[Row]:
    return [
        {
            "id": patient.pk,
            "first_name": patient.first_name,
            "last_name": patient.last_name,
            "date_of_birth": patient.date_of_birth.isoformat(),
            "sex": patient.sex,
            "email": patient.email,
            "phone": patient.phone,
            "preferred_language": patient.preferred_language,
            "timezone": patient.timezone,
            "address": {
                "line1": patient.address_line1,
                "line2": patient.address_line2,
                "city": patient.city,
                "state": patient.state,
                "postal_code": patient.postal_code,
                "country": patient.country,
            },
            "is_active": patient.is_active,
            "created_at": context.time(patient.created_at),
        }
    ]


def _account_rows(patient: Patient, context: ExportContext) -> list[Row]:
    """The sign-in account: who it is and since when; never its password hash."""
    user = patient.user
    if user is None:
        return []
    return [
        {
            "email": user.email,
            "full_name": user.full_name,
            "date_joined": context.time(user.date_joined),
            "last_login": context.time(user.last_login),
            "is_active": user.is_active,
            "roles": sorted(user.roles),
        }
    ]


def _coverage_rows(patient: Patient, context: ExportContext) -> list[Row]:
    coverages = Coverage.objects.filter(patient=patient).select_related("payer")
    return [
        {
            "id": coverage.pk,
            "payer": {"name": coverage.payer.name, "edi_payer_id": coverage.payer.edi_payer_id},
            "member_id": coverage.member_id,
            "group_number": coverage.group_number,
            "priority": coverage.priority,
            "effective_from": coverage.effective_from.isoformat(),
            "effective_to": coverage.effective_to.isoformat() if coverage.effective_to else None,
            "copay_amount": str(coverage.copay_amount),
            "subscriber_relationship": coverage.subscriber_relationship,
            "subscriber_name": coverage.subscriber_name,
            "subscriber_date_of_birth": (
                coverage.subscriber_date_of_birth.isoformat()
                if coverage.subscriber_date_of_birth
                else None
            ),
            "card_photos": [
                side for side in ("front", "back") if getattr(coverage, f"card_{side}")
            ],
            "is_active": coverage.is_active,
        }
        for coverage in coverages.order_by("priority", "-effective_from", "id")
    ]


def _guardian_rows(patient: Patient, context: ExportContext) -> list[Row]:
    return [
        {
            "id": row.pk,
            "name": row.name,
            "relationship": row.relationship,
            "phone": row.phone,
            "email": row.email,
            "is_responsible_party": row.is_responsible_party,
        }
        for row in Guardian.objects.filter(patient=patient).order_by("id")
    ]


def _consent_rows(patient: Patient, context: ExportContext) -> list[Row]:
    return [
        {
            "consent": row.consent_text.title,
            "kind": row.consent_text.kind,
            "version": row.consent_text.version,
            "text": row.consent_text.body,
            "signed_name": row.signed_name,
            "signed_at": context.time(row.signed_at),
        }
        for row in PatientConsent.objects.filter(patient=patient)
        .select_related("consent_text")
        .order_by("signed_at", "id")
    ]


def _erase_intake(patient: Patient, *, by, now) -> dict[str, int]:
    """Guardians are other people's personal data: removed. Signed consents stay (what was
    agreed, which version, when) under a blanked name; card photos are deleted once the
    erasure commits; a subscriber other than the patient is no longer named."""
    guardians, _ = Guardian.objects.filter(patient=patient).delete()
    PatientConsent.objects.filter(patient=patient).update(signed_name="(erased)")
    photos = []
    for coverage in Coverage.objects.filter(patient=patient):
        photos += [f.name for f in (coverage.card_front, coverage.card_back) if f]
    Coverage.objects.filter(patient=patient).update(
        card_front="", card_back="", subscriber_date_of_birth=None
    )
    Coverage.objects.filter(patient=patient).exclude(subscriber_name="").update(
        subscriber_name="(erased)"
    )
    transaction.on_commit(lambda: files_delete(photos))
    return {"guardians_removed": guardians, "card_photos_deleted": len(photos)}


def _erasure_rows(patient: Patient, context: ExportContext) -> list[Row]:
    return [
        {
            "id": row.pk,
            "status": row.status,
            "requested_at": context.time(row.requested_at),
            "message": row.message,
            "decided_at": context.time(row.decided_at),
            "reason": row.reason,
        }
        for row in ErasureRequest.objects.filter(patient=patient).order_by("requested_at", "id")
    ]


def _access_rows(patient: Patient, context: ExportContext) -> list[Row]:
    """Who read, changed or exported the record, from the audit trail (newest first). The
    patient sees who and what; where from (address, request) is for staff."""
    events = list(AuditEvent.objects.filter(patient_id=patient.pk).select_related("content_type"))
    users = {
        user.pk: user
        for user in User.objects.filter(pk__in={e.user_id for e in events if e.user_id})
    }
    rows = []
    for event in events:
        user = users.get(event.user_id) if event.user_id else None
        kind = event.content_type
        rows.append(
            {
                "occurred_at": context.time(event.occurred_at),
                "action": event.action,
                "by": (user.full_name or user.email) if user else event.client or None,
                "what": event.object_label or (kind.name if kind else ""),
                "object_id": event.object_id,
                "fields": list(event.fields),
                "ip": event.ip,
                "request_id": event.request_id,
                "path": event.path,
            }
        )
    return rows


def _own_parts() -> tuple[PatientDataPart, ...]:
    return (
        PatientDataPart(
            name="patient",
            title="Your record",
            export=_patient_rows,
            columns=(
                ("first_name", "First name"),
                ("last_name", "Last name"),
                ("date_of_birth", "Born"),
                ("email", "Email"),
                ("phone", "Phone"),
                ("address.city", "City"),
                ("address.country", "Country"),
            ),
        ),
        PatientDataPart(
            name="account",
            title="Your account",
            export=_account_rows,
            columns=(("email", "Email"), ("date_joined", "Joined"), ("last_login", "Last sign-in")),
        ),
        PatientDataPart(
            name="coverages",
            title="Insurance coverage",
            export=_coverage_rows,
            columns=(
                ("payer.name", "Payer"),
                ("member_id", "Member id"),
                ("priority", "Priority"),
                ("effective_from", "From"),
                ("effective_to", "To"),
            ),
        ),
        PatientDataPart(
            name="guardians",
            title="Guardians and responsible parties",
            export=_guardian_rows,
            columns=(("name", "Name"), ("relationship", "Relationship"), ("phone", "Phone")),
            erase=_erase_intake,
        ),
        PatientDataPart(
            name="consents",
            title="Consents you signed",
            export=_consent_rows,
            columns=(("consent", "Consent"), ("version", "Version"), ("signed_at", "Signed")),
        ),
        PatientDataPart(
            name="access_log",
            title="Who opened your record",
            export=_access_rows,
            columns=(("occurred_at", "When"), ("by", "Who"), ("action", "Did"), ("what", "What")),
            staff_only=("ip", "request_id", "path"),
        ),
        PatientDataPart(
            name="erasure_requests",
            title="Erasure requests",
            export=_erasure_rows,
            columns=(("requested_at", "Asked"), ("status", "Status"), ("reason", "Reason")),
        ),
    )


def patient_export(
    *, patient: Patient, staff: bool, request: Any = None, by=None
) -> dict[str, Any]:
    """Everything the clinic holds about `patient`, as one JSON-ready document.

    `staff` says who reads it: staff get every key, the patient (`staff=False`) not the ones
    each part names as staff-only. Times are ISO 8601 in the clinic's zone. The export is an
    `export` event of the audit trail: the `request`'s (its user, address and id, written
    after the response), or, without one, `by`'s, written at once."""
    clinic = _clinic()
    context = ExportContext(staff=staff, zone=ZoneInfo(clinic["timezone"]))
    patient = Patient.objects.select_related("user").get(pk=patient.pk)
    document: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "generated_at": context.time(timezone.now()),
        "audience": "staff" if staff else "patient",
        "clinic": clinic,
    }
    for part in patient_data_parts():
        rows = part.export(patient, context)
        if not staff:
            rows = [{k: v for k, v in row.items() if k not in part.staff_only} for row in rows]
        document[part.name] = rows
    # One record, not a list: the patient and their account.
    document["patient"] = document["patient"][0]
    document["account"] = document["account"][0] if document["account"] else None
    label = f"data export ({document['audience']} copy)"
    if request is not None:
        audit.record(request, audit.EXPORT, patient, label=label)
    else:
        audit.record_now(audit.EXPORT, patient, user=by, label=label)
    return document


# --- The PDF summary ---------------------------------------------------------------------------


def _text(value: Any) -> str:
    """A value as the PDF's core font can print it (Latin-1; anything else shows as '?': the
    JSON copy is the complete one)."""
    if value is None or value == "":
        text = "-"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, list):
        text = ", ".join(_text(item) for item in value)
    else:
        text = str(value)
    return text.encode("latin-1", "replace").decode("latin-1")


def _cell(row: Row, key: str) -> str:
    value: Any = row
    for name in key.split("."):
        value = value.get(name) if isinstance(value, dict) else None
    if isinstance(value, str) and len(value) >= 16 and value[10:11] == "T":
        value = value[:16].replace("T", " ")  # a time: to the minute
    return _text(value)


def patient_export_pdf(document: dict[str, Any]) -> bytes:
    """A readable summary of an export (`patient_export`): the record, then one table per
    part with the part's `columns`. The JSON is the complete copy; the PDF says so."""
    patient = document["patient"]
    clinic = document["clinic"]
    pdf = FPDF(format="A4")
    pdf.set_title(f"Patient data: {patient['first_name']} {patient['last_name']}")
    pdf.set_creator("Clinic")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    name = _text(f"{patient['first_name']} {patient['last_name']}")
    pdf.multi_cell(
        0,
        8,
        _text(f"Your data at {clinic['name'] or clinic['slug']}: {name}"),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(2)
    pdf.set_font("Helvetica", size=9)
    pdf.multi_cell(
        0,
        5,
        _text(
            f"Generated {_cell(document, 'generated_at')} ({clinic['timezone']}) for the "
            f"{document['audience']}. This is a summary; the JSON download "
            f"({document['format']}, version {document['version']}) holds every item."
        ),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    for part in patient_data_parts():
        value = document.get(part.name)
        rows: Iterable[Row] = [value] if isinstance(value, dict) else (value or [])
        rows = list(rows)
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, _text(f"{part.title} ({len(rows)})"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if not rows:
            pdf.set_font("Helvetica", size=9)
            pdf.cell(0, 5, "None.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            continue
        pdf.set_font("Helvetica", size=8)
        with pdf.table(text_align="LEFT", line_height=4.5) as table:
            heading = table.row()
            for _key, title in part.columns:
                heading.cell(title)
            for row in rows:
                cells = table.row()
                for key, _title in part.columns:
                    cells.cell(_cell(row, key))
    return bytes(pdf.output())


EXPORT_FORMATS = ("json", "pdf")


def patient_export_file(document: dict[str, Any], fmt: str) -> tuple[bytes, str, str]:
    """An export as a download: (content, media type, file name), `fmt` "json" or "pdf"."""
    stem = f"patient-{document['patient']['id']}-data-{document['generated_at'][:10]}"
    if fmt == "pdf":
        return patient_export_pdf(document), "application/pdf", f"{stem}.pdf"
    content = json.dumps(document, ensure_ascii=False, indent=2).encode()
    return content, "application/json", f"{stem}.json"


# --- Erasure -----------------------------------------------------------------------------------


def _record(action: str, *, patient: Patient, by, **data: Any) -> None:
    """A log line beside the audit trail's event: who, whose record (by id only)."""
    logger.info(
        "patient data %s: patient %s by user %s %s",
        action,
        patient.pk,
        by.pk if by is not None else None,
        data,
        extra={"patient_id": patient.pk, "user_id": by.pk if by is not None else None},
    )


@transaction.atomic
def erasure_request(*, patient: Patient, by, message: str = "") -> ErasureRequest:
    """A patient asks to be erased (their pages). The clinic decides: one open request at a
    time (ErasurePendingError), none once erased (AlreadyErasedError)."""
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    statuses = set(ErasureRequest.objects.filter(patient=patient).values_list("status", flat=True))
    if ErasureRequest.Status.ERASED in statuses:
        raise AlreadyErasedError("This record has already been erased.")
    if ErasureRequest.Status.PENDING in statuses:
        raise ErasurePendingError("An erasure request is already waiting for the clinic.")
    return ErasureRequest.objects.create(
        patient=patient, requested_at=timezone.now(), requested_by=by, message=message[:2000]
    )


@transaction.atomic
def erasure_decline(*, request: ErasureRequest, by, reason: str) -> ErasureRequest:
    """The clinic keeps the record (a retention duty, an open claim...) and says why."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why the request is declined."})
    request = ErasureRequest.objects.select_for_update().get(pk=request.pk)
    if request.status != ErasureRequest.Status.PENDING:
        raise ConflictError(f"This request is already {request.get_status_display().lower()}.")
    request.status = ErasureRequest.Status.DECLINED
    request.decided_at, request.decided_by, request.reason = timezone.now(), by, reason[:300]
    request.save(update_fields=["status", "decided_at", "decided_by", "reason"])
    return request


def erased_birth_date(born: date, today: date) -> date:
    """The birth date an erased record keeps: 1 January of its year, no earlier than the
    year that makes the patient `OLDEST_KEPT_AGE` today (Safe Harbor's "90 or older")."""
    return date(max(born.year, today.year - OLDEST_KEPT_AGE), 1, 1)


# What erasure changes on the patient row (the audit event names them, never their values).
ERASED_FIELDS = (
    "first_name",
    "last_name",
    "date_of_birth",
    "email",
    "phone",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "is_active",
)


def _anonymise_patient(patient: Patient, today: date) -> None:
    patient.first_name = ERASED_FIRST_NAME
    patient.last_name = f"patient {patient.pk}"
    patient.date_of_birth = erased_birth_date(patient.date_of_birth, today)
    patient.email = patient.phone = ""
    patient.address_line1 = patient.address_line2 = ""
    patient.city = patient.state = patient.postal_code = ""
    patient.is_active = False
    patient.save()


def _close_account(user: User, patient: Patient) -> None:
    """No one signs in as the patient again: inactive, an unusable password, an address that
    is unique and delivers nowhere. Saving an inactive user with a new password revokes
    every token and session at once (accounts.receivers raises the token version)."""
    user.email = f"erased-{patient.pk}-{secrets.token_hex(4)}@{ERASED_EMAIL_DOMAIN}"
    user.full_name = ""
    user.is_active = False
    user.set_unusable_password()
    user.save()


@transaction.atomic
def patient_erase(
    *,
    patient: Patient,
    by,
    reason: str,
    request: ErasureRequest | None = None,
    now: datetime | None = None,
) -> ErasureRequest:
    """Erase `patient` by anonymisation, irreversibly, and record it.

    In one transaction, under the patient's row lock: every registered part erases its rows
    (scheduling cancels future visits through its services, releasing slots and units, and
    blanks visits' free text; authorizations blanks their notes), the patient row keeps its id
    and what the law keeps (see the module's docstring), the account is closed, the patient's
    own words in earlier requests are blanked, and the erasure's record (`request`, or a new
    row) is written `erased` with who, when, why and counts of what changed. A second erasure
    is AlreadyErasedError (409); a blank reason a ValidationError on `reason`."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why the record is erased (the request, the law)."})
    now = now or timezone.now()
    patient = (
        Patient.objects.select_for_update(of=("self",)).select_related("user").get(pk=patient.pk)
    )
    if ErasureRequest.objects.filter(patient=patient, status=ErasureRequest.Status.ERASED).exists():
        raise AlreadyErasedError("This record has already been erased.")
    summary: dict[str, int] = {}
    for part in patient_data_parts():
        if part.erase is not None:
            summary.update(part.erase(patient, by=by, now=now))
    summary["coverages_deactivated"] = Coverage.objects.filter(
        patient=patient, is_active=True
    ).update(is_active=False)
    _anonymise_patient(patient, timezone.localdate(now))
    if patient.user is not None:
        _close_account(patient.user, patient)
        summary["accounts_closed"] = 1
    ErasureRequest.objects.filter(patient=patient).update(message="")  # the patient's words
    # The patient's open request, if any, is the one carried out (staff may also erase
    # without one: a request by letter, a court order).
    pending = ErasureRequest.objects.select_for_update().filter(
        patient=patient, status=ErasureRequest.Status.PENDING
    )
    if request is not None:
        pending = pending.filter(pk=request.pk)
    request = pending.first() or ErasureRequest(patient=patient, requested_at=now, requested_by=by)
    request.status = ErasureRequest.Status.ERASED
    request.decided_at, request.decided_by = now, by
    request.reason, request.message, request.summary = reason[:300], "", summary
    try:
        with transaction.atomic():
            request.save()
    except IntegrityError as error:  # erased at the same moment by someone else
        raise AlreadyErasedError("This record has already been erased.") from error
    # In the erasure's transaction: an erasure that rolls back leaves no event.
    audit.record_now(
        audit.DELETE, patient, user=by, fields=ERASED_FIELDS, label="erasure (anonymised)"
    )
    _record("erase", patient=patient, by=by, **summary)
    return request


def patient_is_erased(patient: Patient) -> bool:
    return ErasureRequest.objects.filter(
        patient=patient, status=ErasureRequest.Status.ERASED
    ).exists()

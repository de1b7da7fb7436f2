"""authorizations' part of a patient's data rights (practice/rights.py): their authorizations,
with each line's units and the ledger that explains them, in the export; on erasure the
staff's notes are blanked and everything else kept (payers audit units against visits)."""

from practice.models import Patient
from practice.rights import ExportContext, PatientDataPart, Row

from .models import Authorization, AuthorizationRequest, UnitReservation


def _authorization_rows(patient: Patient, context: ExportContext) -> list[Row]:
    authorizations = (
        Authorization.objects.filter(patient=patient)
        .select_related("coverage__payer")
        .prefetch_related("lines__service_codes")
        .order_by("start_date", "id")
    )
    ledger: dict[int, list[Row]] = {}
    for entry in UnitReservation.objects.filter(line__authorization__patient=patient).order_by(
        "service_date", "id"
    ):
        ledger.setdefault(entry.line_id, []).append(
            {
                "id": entry.pk,
                "units": entry.units,
                "state": entry.state,
                "service_date": entry.service_date.isoformat(),
                "reference": entry.reference,
                "created_at": context.time(entry.created_at),
                "consumed_at": context.time(entry.consumed_at),
                "released_at": context.time(entry.released_at),
            }
        )
    return [
        {
            "id": authorization.pk,
            "number": authorization.number,
            "payer": authorization.coverage.payer.name,
            "coverage": authorization.coverage_id,
            "start_date": authorization.start_date.isoformat(),
            "end_date": authorization.end_date.isoformat(),
            "status": authorization.status,
            "lines": [
                {
                    "id": line.pk,
                    "service_codes": sorted(code.code for code in line.service_codes.all()),
                    "units_authorized": line.units_authorized,
                    "weekly_cap": line.weekly_cap,
                    "units_scheduled": line.units_scheduled,
                    "units_used": line.units_used,
                    "units_remaining": line.units_remaining,
                    "usage": ledger.get(line.pk, []),
                }
                for line in authorization.lines.all()
            ],
            "notes": authorization.notes,
            "alert_threshold_percent": authorization.alert_threshold_percent,
            "alert_days_before_expiry": authorization.alert_days_before_expiry,
            "created_at": context.time(authorization.created_at),
        }
        for authorization in authorizations
    ]


def _erase(patient: Patient, *, by, now) -> dict[str, int]:
    """Staff notes and the patient's own words in their requests may name the patient:
    blanked. Numbers, dates and units stay."""
    kept = Authorization.objects.filter(patient=patient)
    kept.exclude(notes="").update(notes="")
    AuthorizationRequest.objects.filter(patient=patient).exclude(message="").update(message="")
    return {"authorizations_kept": kept.count()}


def _request_rows(patient: Patient, context: ExportContext) -> list[Row]:
    return [
        {
            "id": row.pk,
            "service_code": row.service_code.code,
            "visit": row.visit_name,
            "status": row.status,
            "requested_at": context.time(row.requested_at),
            "message": row.message,
            "decided_at": context.time(row.decided_at),
            "decline_reason": row.decline_reason,
            "authorization": row.authorization.number if row.authorization else None,
        }
        for row in AuthorizationRequest.objects.filter(patient=patient)
        .select_related("service_code", "authorization")
        .order_by("requested_at", "id")
    ]


REQUESTS_PART = PatientDataPart(
    name="authorization_requests",
    title="Requests for an authorization",
    export=_request_rows,
    columns=(("requested_at", "Asked"), ("visit", "Visit"), ("status", "Status")),
)


PART = PatientDataPart(
    name="authorizations",
    title="Authorizations",
    export=_authorization_rows,
    columns=(
        ("number", "Number"),
        ("payer", "Payer"),
        ("start_date", "From"),
        ("end_date", "To"),
        ("status", "Status"),
    ),
    # The API's AuthorizationSerializer.staff_only_fields
    staff_only=("notes", "alert_threshold_percent", "alert_days_before_expiry"),
    erase=_erase,
)

"""billing's API: reports (A/R aging, denials, underpayments), as JSON or CSV (`?format=csv`
or `Accept: text/csv`). Billers, clinic admins and integrators read them (`view` on claims:
the roles that see the revenue cycle whole); every patient a report names is recorded in the
audit trail as read."""

from typing import Any

from django.urls import URLPattern, path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import renderers, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from audit import services as audit
from clinic.api import JSONRenderer, Pagination, PlausibleDateField

from .. import reports


class CSVRenderer(renderers.BaseRenderer):
    """A report's CSV, written by `reports.Table.csv` (the view hands over the text)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type=None, renderer_context=None) -> bytes:
        if isinstance(data, str):
            return data.encode(self.charset)
        # an error's problem details, asked for as CSV: said as text rather than refused
        return JSONRenderer().render(data, accepted_media_type, renderer_context)


class AgingQuerySerializer(serializers.Serializer):
    as_of = PlausibleDateField(
        required=False, help_text="Age the balances as of this day (default: today, clinic's zone)."
    )
    by = serializers.ChoiceField(choices=reports.BY, default="payer")


def _money() -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=12, decimal_places=2)


class AgingRowSerializer(serializers.Serializer):
    id = serializers.IntegerField(
        allow_null=True, help_text="The payer's or patient's id; null: the patients' own share."
    )
    name = serializers.CharField()
    buckets = serializers.DictField(child=_money(), help_text="0-30, 31-60, 61-90, 91-120, 120+")
    total = _money()


class AgingSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="How many rows the whole report has.")
    next = serializers.URLField(allow_null=True, help_text="The next page of rows, if any.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, if any.")
    as_of = serializers.DateField()
    by = serializers.ChoiceField(choices=reports.BY)
    basis = serializers.CharField(help_text="What the age counts from: the service date.")
    rows = AgingRowSerializer(many=True, help_text="This page's rows, largest total first.")
    totals = serializers.DictField(child=_money(), help_text="The whole report's, per bucket.")
    total = _money()


@extend_schema_serializer(component_name="DenialReason")
class ReasonSerializer(serializers.Serializer):
    group = serializers.CharField()
    code = serializers.CharField()
    remarks = serializers.ListField(child=serializers.CharField())
    amount = _money()
    text = serializers.CharField(help_text="In plain English.")


class DenialSerializer(serializers.Serializer):
    claim = serializers.IntegerField(source="claim_id")
    claim_status = serializers.CharField()
    line = serializers.IntegerField(source="line_id")
    patient = serializers.IntegerField(source="patient_id")
    patient_name = serializers.CharField(source="patient")
    payer = serializers.IntegerField(source="payer_id")
    payer_name = serializers.CharField(source="payer")
    service_date = serializers.DateField()
    code = serializers.CharField()
    units = serializers.IntegerField()
    amount = _money()
    reasons = ReasonSerializer(many=True)
    explanation = serializers.CharField()
    authorization = serializers.IntegerField(source="authorization_id", allow_null=True)
    authorization_number = serializers.CharField()


class UnderpaymentSerializer(serializers.Serializer):
    claim = serializers.IntegerField(source="claim_id")
    line = serializers.IntegerField(source="line_id")
    patient = serializers.IntegerField(source="patient_id")
    patient_name = serializers.CharField(source="patient")
    payer = serializers.IntegerField(source="payer_id")
    payer_name = serializers.CharField(source="payer")
    service_date = serializers.DateField()
    code = serializers.CharField()
    units = serializers.IntegerField()
    amount = _money()
    expected_allowed = _money()
    paid = _money()
    patient_share = _money()
    allowed = _money()
    shortfall = _money()


def _list_of(serializer) -> Any:
    return serializers.ListSerializer(child=serializer())


FORMAT = OpenApiParameter(
    "format", OpenApiTypes.STR, enum=["json", "csv"], description="csv: the report as a file."
)
CSV_RESPONSE = OpenApiResponse(OpenApiTypes.STR, description="The report as CSV.")


class ReportView(APIView):
    """A report: billers, clinic admins and integrators (`view` on claims)."""

    permission_model = "billing.claim"
    renderer_classes = [JSONRenderer, CSVRenderer]
    filename = "report"

    def answer(self, request: Request, data: Any, table: reports.Table) -> Response:
        if getattr(request.accepted_renderer, "format", "") == "csv":
            response = Response(table.csv(), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="{self.filename}.csv"'
            return response
        return Response(data)

    def audit_patients(self, request: Request, patient_ids, label: str) -> None:
        """One read per patient the report names (their billing data was served)."""
        for patient_id in sorted(set(patient_ids)):
            audit.record(request, audit.READ, patient=patient_id, label=label)


PAGE_PARAMETERS = [
    OpenApiParameter("page", OpenApiTypes.INT, description="The page of rows (JSON only)."),
    OpenApiParameter(
        "page_size", OpenApiTypes.INT, description="Rows per page (default 20, at most 200)."
    ),
]


class ArAgingView(ReportView):
    filename = "ar-aging"
    pagination_class = Pagination

    @extend_schema(
        operation_id="reports_ar_aging",
        parameters=[AgingQuerySerializer, *PAGE_PARAMETERS, FORMAT],
        responses={
            (200, "application/json"): AgingSerializer,
            (200, "text/csv"): CSV_RESPONSE,
        },
        description="Accounts receivable by age of the service date (0-30, 31-60, 61-90, "
        "91-120, 120+ days), by payer (and the patients' own share as one row) or by patient; "
        "the totals are the sum of the ledger's balances. The rows come a page at a time "
        "(`count`, `next`, `previous`, as every list), the totals are the whole report's; "
        "the CSV holds every row. Each patient a page (or the CSV) names is an audited read.",
    )
    def get(self, request: Request) -> Response:
        query = AgingQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        by, as_of = query.validated_data["by"], query.validated_data.get("as_of")
        if getattr(request.accepted_renderer, "format", "") == "csv":
            report = reports.ar_aging(by=by, as_of=as_of)
            if by == "patient":
                self.audit_patients(request, [r.key for r in report.rows], "A/R aging by patient")
            return self.answer(request, None, reports.aging_table(report))
        rows = reports.ar_aging_rows(by=by, as_of=as_of)
        paginator = self.pagination_class()
        # a sequence read a slice at a time, not a queryset (the stubs know only those)
        page: list[reports.AgingRow] = (
            paginator.paginate_queryset(rows, request, view=self)  # type: ignore[arg-type]
            or []
        )
        if by == "patient":
            self.audit_patients(request, [r.key for r in page], "A/R aging by patient")
        totals = rows.totals()
        data = {
            "count": len(rows),
            "next": paginator.get_next_link(),
            "previous": paginator.get_previous_link(),
            "as_of": rows.as_of,
            "by": by,
            "basis": "service date",
            "rows": [
                {
                    "id": row.key,
                    "name": row.label,
                    "buckets": dict(zip(reports.BUCKETS, row.buckets, strict=True)),
                    "total": row.total,
                }
                for row in page
            ],
            "totals": dict(zip(reports.BUCKETS, totals, strict=True)),
            "total": sum(totals, reports.ZERO),
        }
        return Response(AgingSerializer(data).data)


class DenialsView(ReportView):
    filename = "denials"

    @extend_schema(
        operation_id="reports_denials",
        parameters=[FORMAT],
        responses={
            (200, "application/json"): _list_of(DenialSerializer),
            (200, "text/csv"): CSV_RESPONSE,
        },
        description="The denial worklist: claim lines the payer paid nothing on, with its "
        "reasons in plain English; an authorization reason (CARC 15, 62, 197, 198) names "
        "the authorization to look at.",
    )
    def get(self, request: Request) -> Response:
        rows = reports.denials()
        self.audit_patients(request, [d.patient_id for d in rows], "Denials worklist")
        data = DenialSerializer(rows, many=True).data
        return self.answer(request, data, reports.denials_table(rows))


class UnderpaymentsView(ReportView):
    filename = "underpayments"

    @extend_schema(
        operation_id="reports_underpayments",
        parameters=[FORMAT],
        responses={
            (200, "application/json"): _list_of(UnderpaymentSerializer),
            (200, "text/csv"): CSV_RESPONSE,
        },
        description="Claim lines a payer allowed (paid plus patient share) less than the fee "
        "schedule's expected allowed amount.",
    )
    def get(self, request: Request) -> Response:
        rows = reports.underpayments()
        self.audit_patients(request, [u.patient_id for u in rows], "Underpayments report")
        data = UnderpaymentSerializer(rows, many=True).data
        return self.answer(request, data, reports.underpayments_table(rows))


# Paths that are not viewsets (uploads, reports), added to billing.api.urls.
paths: list[URLPattern] = [
    path("reports/ar-aging/", ArAgingView.as_view(), name="report-ar-aging"),
    path("reports/denials/", DenialsView.as_view(), name="report-denials"),
    path("reports/underpayments/", UnderpaymentsView.as_view(), name="report-underpayments"),
]


def register(router: SimpleRouter) -> None:
    """Register this module's viewsets on the billing router (reports are plain paths)."""

"""billing's API: claims (built from charges, scrubbed, submitted as 837P, replaced, voided,
appealed) and the payer's acknowledgements (999, 277CA) that move them.

Views parse and render; the rules are billing.claims'. Every claim served is audited
(AuditedAPIMixin: a claim carries its patient); an acknowledgement records an update of each
claim it moved.
"""

from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from django.db.models import QuerySet
from django.http import HttpResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from audit import services as audit
from audit.mixins import AuditedAPIMixin
from clinic.api import CursorPagination, ModelSerializer
from clinic.permissions import required_permission
from practice.models import Patient, Payer
from practice.selectors import rows_in_scope

from .. import claims as services
from ..models import Claim, ClaimLine

# --- Serializers --------------------------------------------------------------------------------


class FindingSerializer(serializers.Serializer):
    code = serializers.CharField()
    field = serializers.CharField(help_text="Our field at fault, e.g. lines[0].diagnosis_pointers")
    location = serializers.CharField(help_text="Where the 837P says it, e.g. 2400 SV107")
    message = serializers.CharField(help_text="What is wrong and how to fix it")


class ClaimLineSerializer(ModelSerializer):
    line_ref = serializers.CharField(read_only=True, help_text="REF*6R: the 835 answers with it")
    service_code = serializers.CharField(source="charge.service_code.code", read_only=True)
    service_date = serializers.DateField(source="charge.service_date", read_only=True)
    modifiers = serializers.CharField(source="charge.modifiers", read_only=True)
    diagnosis_pointers = serializers.ListField(
        source="charge.diagnosis_pointers", child=serializers.IntegerField(), read_only=True
    )

    class Meta:
        model = ClaimLine
        fields = [
            "id",
            "number",
            "line_ref",
            "charge",
            "service_code",
            "service_date",
            "modifiers",
            "diagnosis_pointers",
            "units",
            "amount",
        ]
        read_only_fields = fields


class ClaimSerializer(ModelSerializer):
    control_number = serializers.CharField(read_only=True, help_text="CLM01")
    payer_name = serializers.CharField(source="payer.name", read_only=True)
    patient_name = serializers.SerializerMethodField()
    findings = FindingSerializer(many=True, read_only=True)

    class Meta:
        model = Claim
        fields = [
            "id",
            "control_number",
            "status",
            "frequency",
            "replaces",
            "patient",
            "patient_name",
            "payer",
            "payer_name",
            "coverage",
            "episode",
            "rendering",
            "supervising",
            "supervising_npi",
            "total_charge",
            "payer_claim_number",
            "submission",
            "submitted_at",
            "status_reason",
            "findings",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_patient_name(self, obj: Claim) -> str:
        return f"{obj.patient.last_name}, {obj.patient.first_name}"

    def to_representation(self, instance: Claim) -> dict:
        """What the declared fields write, written directly: DRF's field-by-field path was a
        fifth of a claims-list answer (20 claims x 22 fields). `test_claims_api` compares the
        two for every kind of claim."""
        return {
            "id": instance.pk,
            "control_number": instance.control_number,
            "status": instance.status,
            "frequency": instance.frequency,
            "replaces": instance.replaces_id,
            "patient": instance.patient_id,
            "patient_name": self.get_patient_name(instance),
            "payer": instance.payer_id,
            "payer_name": instance.payer.name,
            "coverage": instance.coverage_id,
            "episode": instance.episode_id,
            "rendering": instance.rendering_id,
            "supervising": instance.supervising_id,
            "supervising_npi": instance.supervising_npi,
            "total_charge": f"{instance.total_charge.quantize(CENT):f}",
            "payer_claim_number": instance.payer_claim_number,
            "submission": instance.submission_id,
            "submitted_at": _instant(instance.submitted_at),
            "status_reason": instance.status_reason,
            "findings": [
                {key: str(finding.get(key, "")) for key in FINDING_KEYS}
                for finding in instance.findings
            ],
            "created_at": _instant(instance.created_at),
            "updated_at": _instant(instance.updated_at),
        }


CENT = Decimal("0.01")
FINDING_KEYS = ("code", "field", "location", "message")


def _instant(value: datetime | None) -> str | None:
    """As DRF's DateTimeField writes it: in the current zone, ISO 8601, UTC as "Z"."""
    if value is None:
        return None
    text = value.astimezone(timezone.get_current_timezone()).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class ClaimDetailSerializer(ClaimSerializer):
    lines = ClaimLineSerializer(many=True, read_only=True)

    class Meta(ClaimSerializer.Meta):
        fields = [*ClaimSerializer.Meta.fields, "lines"]
        read_only_fields = fields

    def to_representation(self, instance: Claim) -> dict:
        data = super().to_representation(instance)
        lines = self.fields["lines"]
        data["lines"] = lines.to_representation(lines.get_attribute(instance))
        return data


class ClaimBuildSerializer(serializers.Serializer):
    charges = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        max_length=10_000,
        help_text="Open charges to bill; default: every open charge to a payer (filtered below).",
    )
    payer = serializers.PrimaryKeyRelatedField(queryset=Payer.objects.all(), required=False)
    patient = serializers.PrimaryKeyRelatedField(queryset=Patient.objects.all(), required=False)


class ClaimBuiltSerializer(serializers.Serializer):
    claims = ClaimSerializer(many=True)


class LineChangeSerializer(serializers.Serializer):
    id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    units = serializers.IntegerField(min_value=1, max_value=10_000, required=False)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, required=False)


class ClaimUpdateSerializer(serializers.Serializer):
    lines = LineChangeSerializer(
        many=True, help_text="The whole set: a line left out is removed (its charge reopens)."
    )


class SubmitManySerializer(serializers.Serializer):
    claims = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        min_length=1,
        max_length=5_000,
    )


class SubmissionSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Its ISA13, GS06 and ST02")
    claim_count = serializers.IntegerField()
    total_charge = serializers.DecimalField(max_digits=12, decimal_places=2)
    acknowledgement = serializers.CharField()
    created_at = serializers.DateTimeField()
    claims = serializers.ListField(child=serializers.IntegerField())


class CorrectionSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class AppealSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=500)


class AcknowledgementSerializer(serializers.Serializer):
    x12 = serializers.CharField(
        max_length=5_000_000, trim_whitespace=False, help_text="The 999 or 277CA file's text."
    )


class AcknowledgementResultSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["999", "277CA"])
    claims = ClaimSerializer(many=True)
    unmatched = serializers.ListField(child=serializers.CharField())


def _submission(submission, claims: list[int]) -> dict:
    return {
        "id": submission.pk,
        "claim_count": submission.claim_count,
        "total_charge": submission.total_charge,
        "acknowledgement": submission.acknowledgement,
        "created_at": submission.created_at,
        "claims": claims,
    }


# --- Views --------------------------------------------------------------------------------------


class ClaimFilter(filters.FilterSet):
    class Meta:
        model = Claim
        fields = ["status", "payer", "patient", "submission", "frequency"]


SUBMIT = "billing.submit_claim"
FINDINGS = OpenApiResponse(description="claim-findings: each finding names the field and fix")
NOT_EDITABLE = OpenApiResponse(description="claim-not-editable / claim-state")


class ClaimViewSet(
    AuditedAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Claims to payers. `POST` builds draft claims from open charges (per payer, patient
    and rendering provider; at most 50 lines and 12 diagnoses each). A draft or ready claim's
    lines change with `PATCH` (409 once submitted: replace or void it instead); `scrub/`
    stores the findings (ready when clean); `submit/` sends it in an 837P, refused with the
    findings (400) if any. Replacing (7), voiding (8) and sending need `submit_claim`."""

    permission_model = "billing.claim"
    permission_actions: ClassVar[dict[str, str]] = {
        "scrub": "change",
        "appeal": "change",
        "submit": SUBMIT,
        "submit_many": SUBMIT,
        "replace": SUBMIT,
        "void": SUBMIT,
        "x12": "view",
    }
    serializer_class = ClaimSerializer
    filterset_class = ClaimFilter
    # A large list (a claim per visit): pages by cursor, never by a count of every claim (an
    # exact count of 23,000 claims was a third of each answer's time). Ordering fields are
    # never null (a cursor's position is compared as a tuple).
    pagination_class = CursorPagination
    ordering_fields = ["id", "created_at", "total_charge"]
    ordering = ["-id"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Claim]:
        base = services.claim_detail() if self.action != "list" else services.claim_page()
        permission = required_permission(self.request, self) or "billing.view_claim"
        if permission == SUBMIT:  # the rows are the claims the caller may change
            permission = "billing.change_claim"
        return rows_in_scope(
            base,
            user=self.request.user,
            permission=permission,
            patient="patient",
        )

    def get_serializer_class(self):
        return ClaimSerializer if self.action == "list" else ClaimDetailSerializer

    def _render(self, claim: Claim, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=claim.pk)
        return Response(ClaimDetailSerializer(fresh).data, status=code)

    @extend_schema(
        request=ClaimBuildSerializer,
        responses={
            201: ClaimBuiltSerializer,
            400: OpenApiResponse(description="nothing-to-bill"),
        },
    )
    def create(self, request: Request) -> Response:
        data = ClaimBuildSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        built = services.claims_build(
            charges=v.get("charges"), payer=v.get("payer"), patient=v.get("patient"),
            by=request.user,
        )  # fmt: skip
        claims = list(self.get_queryset().filter(pk__in=[c.pk for c in built]).order_by("id"))
        self.audit_serve(claims)
        for claim in claims:
            audit.record(request, audit.CREATE, claim)
        return Response(
            {"claims": ClaimSerializer(claims, many=True).data}, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        request=ClaimUpdateSerializer,
        responses={200: ClaimDetailSerializer, 409: NOT_EDITABLE},
    )
    def partial_update(self, request: Request, pk=None) -> Response:
        claim = self.get_object()
        if claim.status not in services.EDITABLE:  # before parsing: any edit is refused
            raise services.ClaimNotEditableError(
                f"Claim {claim.control_number} is {claim.get_status_display().lower()}: a "
                "submitted claim is never edited; replace or void it instead.",
                extra={"status": claim.status},
            )
        data = ClaimUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        claim = services.claim_update(
            claim=claim,
            lines=[services.LineChange(**line) for line in data.validated_data["lines"]],
        )
        return self._render(claim)

    @extend_schema(request=None, responses={200: ClaimDetailSerializer, 409: NOT_EDITABLE})
    @action(detail=True, methods=["post"])
    def scrub(self, request: Request, pk=None) -> Response:
        claim = services.claim_scrub(claim=self.get_object())
        return self._render(claim)

    @extend_schema(
        request=None,
        responses={201: SubmissionSerializer, 400: FINDINGS, 409: NOT_EDITABLE},
    )
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk=None) -> Response:
        claim = self.get_object()
        submission = services.claims_submit(claims=[claim], by=request.user)
        return Response(_submission(submission, [claim.pk]), status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="v1_claims_submit_many",
        request=SubmitManySerializer,
        responses={201: SubmissionSerializer, 400: FINDINGS, 409: NOT_EDITABLE},
    )
    @action(detail=False, methods=["post"], url_path="submit")
    def submit_many(self, request: Request) -> Response:
        data = SubmitManySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ids = sorted(set(data.validated_data["claims"]))
        claims = list(self.get_queryset().filter(pk__in=ids))
        found = {c.pk for c in claims}
        if found != set(ids):
            missing = ", ".join(str(i) for i in ids if i not in found)
            raise serializers.ValidationError({"claims": [f"No claim {missing}."]})
        self.audit_serve(claims)
        submission = services.claims_submit(claims=claims, by=request.user)
        return Response(_submission(submission, ids), status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={
            (200, "application/edi-x12"): OpenApiTypes.STR,
            409: OpenApiResponse(description="claim-state: not submitted yet"),
        }
    )
    @action(detail=True, methods=["get"])
    def x12(self, request: Request, pk=None) -> HttpResponse:
        """The 837P file the claim was sent in (its whole submission)."""
        claim = self.get_object()
        if claim.submission_id is None:
            raise services.ClaimStateError(
                f"Claim {claim.control_number} has not been submitted: no 837P yet.",
                extra={"status": claim.status},
            )
        text = claim.submission.x12
        response = HttpResponse(text, content_type="application/edi-x12; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="837p-{claim.submission_id:09d}.x12"'
        )
        return response

    def _correct(self, request: Request, frequency: str) -> Response:
        data = CorrectionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        correction = services.claim_correct(
            claim=self.get_object(),
            frequency=frequency,
            reason=data.validated_data["reason"],
            by=request.user,
        )
        audit.record(request, audit.CREATE, correction)
        return self._render(correction, status.HTTP_201_CREATED)

    @extend_schema(
        request=CorrectionSerializer, responses={201: ClaimDetailSerializer, 409: NOT_EDITABLE}
    )
    @action(detail=True, methods=["post"])
    def replace(self, request: Request, pk=None) -> Response:
        """A draft replacement claim (frequency 7, REF*F8 the payer's claim number)."""
        return self._correct(request, Claim.Frequency.REPLACEMENT)

    @extend_schema(
        request=CorrectionSerializer, responses={201: ClaimDetailSerializer, 409: NOT_EDITABLE}
    )
    @action(detail=True, methods=["post"])
    def void(self, request: Request, pk=None) -> Response:
        """A draft void claim (frequency 8, REF*F8 the payer's claim number)."""
        return self._correct(request, Claim.Frequency.VOID)

    @extend_schema(
        request=AppealSerializer, responses={200: ClaimDetailSerializer, 409: NOT_EDITABLE}
    )
    @action(detail=True, methods=["post"])
    def appeal(self, request: Request, pk=None) -> Response:
        data = AppealSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        claim = services.claim_appeal(
            claim=self.get_object(), note=data.validated_data["note"], by=request.user
        )
        return self._render(claim)


class AcknowledgementView(APIView):
    """`POST /acknowledgements/`: a 999 or 277CA file (`x12`), read and applied to our
    claims: 400 naming the segment when malformed (nothing changes)."""

    permission_model = "billing.claim"
    permission_actions: ClassVar[dict[str, str]] = {"post": "change"}

    @extend_schema(
        request=AcknowledgementSerializer,
        responses={
            200: AcknowledgementResultSerializer,
            400: OpenApiResponse(description="x12-refused: findings name the segment"),
        },
    )
    def post(self, request: Request) -> Response:
        data = AcknowledgementSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.acknowledgement_import(text=data.validated_data["x12"], by=request.user)
        claims = list(services.claim_list().filter(pk__in=[c.pk for c in result.claims]))
        for claim in claims:
            audit.record(request, audit.UPDATE, claim, fields=["status", "status_reason"])
        return Response(
            {
                "kind": result.kind,
                "claims": ClaimSerializer(claims, many=True).data,
                "unmatched": result.unmatched,
            }
        )


# Paths that are not viewsets (uploads, reports), added to billing.api.urls.
paths: list[URLPattern] = [
    path("acknowledgements/", AcknowledgementView.as_view(), name="acknowledgement-upload"),
]


def register(router: SimpleRouter) -> None:
    """Register this module's viewsets on the billing router."""
    router.register("claims", ClaimViewSet, basename="claim")

"""billing's API: money. 835 remittances (upload and post, list, detail with the unmatched
claim payments and the provider-level adjustments), payments (list, take, refund), balances (a
patient's, and the signed-in patient's own), and a biller's transfers between payer and
patient, write-offs and credit application, and the ledger itself (`/ledger-entries/`, by
cursor).

`POST /remittances/` takes the 835 as a multipart `file`, as `x12` in a JSON or form body, or
as a `text/plain` body. 201 with what it posted; a file whose every trace was posted before
answers 200 with the remittances already posted (also to the loser of two concurrent uploads
of one file: its INSERT waits for the winner's and then finds it), so a retried upload is
safe; a malformed or unbalanced file is a 400 `x12-refused` whose `findings` name the
segments, nothing posted.
"""

from decimal import Decimal
from typing import Any, ClassVar

from django.db.models import Count, Prefetch, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import BaseParser, FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from audit import services as audit
from audit.mixins import AuditedAPIMixin
from clinic.api import CursorPagination, JSONParser
from clinic.errors import NotFoundError, PermissionDeniedError
from clinic.permissions import required_permission
from practice.models import Patient
from practice.selectors import clinic_settings_get, row_in_scope, rows_in_scope

from .. import balances, credits, payments, posting
from ..models import (
    Charge,
    LedgerEntry,
    Payment,
    ProviderAdjustment,
    Remittance,
    RemittanceClaim,
    WriteOffReason,
)
from ..x12.reasons import explain, explain_provider_adjustment

IDEMPOTENCY = OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER)
MAX_835_BYTES = 20 * 1024 * 1024


class PlainTextParser(BaseParser):
    """An X12 file as the request body (`text/plain`)."""

    media_type = "text/plain"

    def parse(self, stream, media_type=None, parser_context=None) -> dict[str, str]:
        raw = stream.read(MAX_835_BYTES + 1) if stream is not None else b""
        if len(raw) > MAX_835_BYTES:
            raise serializers.ValidationError({"x12": ["The file is larger than 20 MB."]})
        try:
            return {"x12": raw.decode("utf-8")}
        except UnicodeDecodeError:
            raise serializers.ValidationError({"x12": ["The file is not UTF-8 text."]}) from None


# --- Remittances -------------------------------------------------------------------------------


class RemittanceClaimSerializer(serializers.ModelSerializer):
    matched = serializers.SerializerMethodField()
    patient = serializers.IntegerField(source="claim.patient_id", read_only=True, default=None)

    class Meta:
        model = RemittanceClaim
        fields = [
            "id",
            "claim",
            "patient",
            "matched",
            "patient_control_number",
            "status_code",
            "charge_amount",
            "paid_amount",
            "patient_responsibility",
            "payer_claim_number",
        ]

    def get_matched(self, obj: RemittanceClaim) -> bool:
        return obj.claim_id is not None


class ProviderAdjustmentSerializer(serializers.ModelSerializer):
    description = serializers.SerializerMethodField()

    class Meta:
        model = ProviderAdjustment
        fields = [
            "id",
            "provider",
            "fiscal_period",
            "reason",
            "reference",
            "claim",
            "amount",
            "description",
            "segment",
            "posted_on",
        ]

    def get_description(self, obj: ProviderAdjustment) -> str:
        return explain_provider_adjustment(obj.reason, obj.reference, obj.amount)


class RemittanceSerializer(serializers.ModelSerializer):
    claims = RemittanceClaimSerializer(many=True, read_only=True)
    unmatched = serializers.IntegerField(read_only=True)
    provider_adjustments = ProviderAdjustmentSerializer(
        source="provider_entries",
        many=True,
        read_only=True,
        help_text="The PLB adjustments, posted to the clinic's account with the payer (positive: "
        "withheld from the payment; negative: added to it). payment_amount = Σ claims' "
        "paid_amount − Σ these amounts.",
    )

    class Meta:
        model = Remittance
        fields = [
            "id",
            "payer",
            "payer_identifier",
            "trace_number",
            "payment_amount",
            "payment_method",
            "payment_date",
            "file_name",
            "provider_adjustments",
            "posted_at",
            "unmatched",
            "claims",
        ]


class RemittanceUploadSerializer(serializers.Serializer):
    file = serializers.FileField(required=False, help_text="The 835 file (multipart).")
    x12 = serializers.CharField(
        required=False, trim_whitespace=False, max_length=MAX_835_BYTES, help_text="The 835."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        upload = attrs.get("file")
        if upload is not None:
            if upload.size > MAX_835_BYTES:
                raise serializers.ValidationError({"file": ["The file is larger than 20 MB."]})
            try:
                attrs["x12"] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise serializers.ValidationError({"file": ["Not UTF-8 text."]}) from None
            attrs["file_name"] = upload.name or ""
        if not attrs.get("x12"):
            raise serializers.ValidationError({"file": ["Send the 835 as `file` or `x12`."]})
        return attrs


class PostingSerializer(serializers.Serializer):
    created = serializers.BooleanField(help_text="False: every trace was posted before.")
    remittances = RemittanceSerializer(many=True)


class RemittanceViewSet(
    AuditedAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """835 remittances: upload one to post it (billers), list and read them with their claim
    payments; `?unmatched=true` lists those with claim payments waiting on the worklist."""

    permission_model = "billing.remittance"
    serializer_class = RemittanceSerializer
    parser_classes = [JSONParser, MultiPartParser, FormParser, PlainTextParser]
    ordering = ["-posted_at", "-id"]
    ordering_fields = ["posted_at", "payment_amount"]

    def get_queryset(self) -> QuerySet[Remittance]:
        queryset = Remittance.objects.annotate(
            unmatched=Count("claims", filter=Q(claims__claim__isnull=True))
        ).prefetch_related(
            Prefetch("claims", RemittanceClaim.objects.select_related("claim").order_by("id")),
            "provider_entries",
        )
        flag = self.request.query_params.get("unmatched", "").lower()
        if flag in ("true", "1"):
            queryset = queryset.filter(unmatched__gt=0)
        elif flag in ("false", "0"):
            queryset = queryset.filter(unmatched=0)
        return queryset

    def _served_claims(self, remittances) -> None:
        # What a remittance tells of a patient is its claims: their rows are the audit's.
        self.audit_serve(
            claim_payment.claim
            for remittance in remittances
            for claim_payment in remittance.claims.all()
            if claim_payment.claim is not None
        )

    def list(self, request: Request, *args, **kwargs) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        assert page is not None
        self._served_claims(page)
        return self.get_paginated_response(RemittanceSerializer(page, many=True).data)

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        remittance = super().get_object()
        self._served_claims([remittance])
        return Response(RemittanceSerializer(remittance).data)

    @extend_schema(
        request={
            "multipart/form-data": RemittanceUploadSerializer,
            "application/json": RemittanceUploadSerializer,
            "text/plain": OpenApiTypes.STR,
        },
        responses={
            201: PostingSerializer,
            200: OpenApiResponse(PostingSerializer, description="Every trace posted before."),
            400: OpenApiResponse(description="x12-refused: `findings` name the segments."),
        },
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        upload = RemittanceUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        result = posting.remittance_post(
            text=upload.validated_data["x12"],
            file_name=upload.validated_data.get("file_name", ""),
            by=request.user,
        )
        fresh = list(self.get_queryset().filter(pk__in=[r.pk for r in result.remittances]))
        self._served_claims(fresh)
        body = {
            "created": result.created,
            "remittances": RemittanceSerializer(fresh, many=True).data,
        }
        return Response(body, status=status.HTTP_201_CREATED if result.created else 200)


# --- Payments ----------------------------------------------------------------------------------


class PaymentSerializer(serializers.ModelSerializer):
    refunded = serializers.SerializerMethodField()

    class Meta:
        model = Payment
        fields = [
            "id",
            "patient",
            "payer",
            "remittance",
            "appointment",
            "kind",
            "method",
            "amount",
            "status",
            "reference",
            "processor",
            "processor_id",
            "refund_of",
            "refunded",
            "received_at",
            "note",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DecimalField(12, 2))
    def get_refunded(self, obj: Payment) -> str:
        return str(
            sum(
                (r.amount for r in obj.refunds.all() if r.status == Payment.Status.SUCCEEDED),
                Decimal("0.00"),
            )
        )


class PaymentCreateSerializer(serializers.Serializer):
    patient = serializers.PrimaryKeyRelatedField(queryset=Patient.objects.all())
    amount = serializers.DecimalField(
        12,
        2,
        required=False,
        min_value=Decimal("0.01"),
        help_text="Omitted for a copay: the visit's coverage's copay.",
    )
    method = serializers.ChoiceField(Payment.Method.choices)
    kind = serializers.ChoiceField(
        [Payment.Kind.PAYMENT, Payment.Kind.COPAY], default=Payment.Kind.PAYMENT
    )
    appointment = serializers.IntegerField(
        required=False, help_text="The visit a copay is for (required for a copay)."
    )
    token = serializers.CharField(
        required=False, max_length=200, help_text="The processor's card token (online)."
    )
    reference = serializers.CharField(required=False, allow_blank=True, max_length=100)
    note = serializers.CharField(required=False, allow_blank=True, max_length=300)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["method"] == Payment.Method.ONLINE and not attrs.get("token"):
            raise serializers.ValidationError({"token": ["An online payment needs a token."]})
        if attrs["kind"] == Payment.Kind.COPAY:
            if not attrs.get("appointment"):
                raise serializers.ValidationError({"appointment": ["Name the visit."]})
        elif "amount" not in attrs:
            raise serializers.ValidationError({"amount": ["This field is required."]})
        return attrs


class RefundSerializer(serializers.Serializer):
    amount = serializers.DecimalField(12, 2, min_value=Decimal("0.01"))
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300)


class PaymentViewSet(
    AuditedAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Payments: patients' (desk, copay, online) and payers' (posted from 835s). The front
    desk takes payments and copays; a patient reads their own and pays online (`method`
    online with the processor's `token`); a refund needs `change`. `Idempotency-Key` makes a
    retried POST answer the payment it first made."""

    permission_model = "billing.payment"
    permission_actions: ClassVar[dict[str, str]] = {"refund": "change"}
    self_service_actions = ("list", "retrieve", "metadata", "create")
    serializer_class = PaymentSerializer
    ordering = ["-received_at", "-id"]
    ordering_fields = ["received_at", "amount"]
    filterset_fields: ClassVar[list[str]] = ["patient", "kind", "method", "status"]

    def get_queryset(self) -> QuerySet[Payment]:
        permission = required_permission(self.request, self) or "billing.view_payment"
        if permission == "billing.add_payment":
            permission = "billing.view_payment"
        return rows_in_scope(
            Payment.objects.prefetch_related("refunds"),
            user=self.request.user,
            permission=permission,
            patient="patient",
        )

    @extend_schema(
        request=PaymentCreateSerializer,
        parameters=[IDEMPOTENCY],
        responses={
            201: PaymentSerializer,
            402: OpenApiResponse(description="payment-declined (online)"),
            409: OpenApiResponse(description="no-copay"),
        },
    )
    def create(self, request: Request) -> Response:
        data = PaymentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        patient = v["patient"]
        user = request.user
        if not row_in_scope(user=user, permission="billing.add_payment", patient=patient):
            raise PermissionDeniedError("This patient's payments are not yours to take.")
        staff = user.has_perm("billing.add_payment")
        if not staff and v["method"] != Payment.Method.ONLINE:
            raise PermissionDeniedError("Patients pay online.")
        key = request.headers.get("Idempotency-Key") or None
        if v["method"] == Payment.Method.ONLINE:
            payment = payments.payment_online(
                patient=patient,
                amount=v["amount"],
                token=v["token"],
                currency=clinic_settings_get().currency,
                idempotency_key=key or f"online-{user.pk}-{v['token']}",
                by=user,
            )
        elif v["kind"] == Payment.Kind.COPAY:
            appointment = patient.appointments.filter(pk=v["appointment"]).first()
            if appointment is None:
                raise serializers.ValidationError({"appointment": ["Not a visit of this patient."]})
            payment = payments.copay_take(
                appointment=appointment,
                method=v["method"],
                reference=v.get("reference", ""),
                idempotency_key=key,
                by=user,
            )
        else:
            payment = payments.payment_take(
                patient=patient,
                amount=v["amount"],
                method=v["method"],
                reference=v.get("reference", ""),
                note=v.get("note", ""),
                idempotency_key=key,
                by=user,
            )
        audit.record(request, audit.CREATE, payment)
        return Response(PaymentSerializer(payment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=RefundSerializer,
        responses={
            201: PaymentSerializer,
            409: OpenApiResponse(description="refund-exceeds-payment (names amount)"),
        },
    )
    @action(detail=True, methods=["post"])
    def refund(self, request: Request, pk=None) -> Response:
        payment = self.get_object()
        data = RefundSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        refund = payments.payment_refund(
            payment=payment,
            amount=data.validated_data["amount"],
            reason=data.validated_data.get("reason", ""),
            by=request.user,
        )
        audit.record(request, audit.CREATE, refund)
        return Response(PaymentSerializer(refund).data, status=status.HTTP_201_CREATED)


# --- Balances ----------------------------------------------------------------------------------


class ChargeBalanceSerializer(serializers.Serializer):
    charge = serializers.IntegerField()
    service_date = serializers.DateField()
    code = serializers.CharField()
    amount = serializers.DecimalField(12, 2)
    payers = serializers.DecimalField(12, 2)
    patient = serializers.DecimalField(12, 2)
    total = serializers.DecimalField(12, 2)


class MissedVisitFeeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    appointment = serializers.IntegerField(source="appointment_id")
    visit_start = serializers.DateTimeField(source="appointment.start")
    kind = serializers.CharField(help_text="`no_show` or `late_cancel`.")
    amount = serializers.DecimalField(12, 2)
    status = serializers.CharField(
        help_text="`charged` (owed), `reversed` (the no-show was undone) or `waived` (with "
        "`reason`)."
    )
    owed = serializers.DecimalField(
        12, 2, help_text="What is still owed on it: payments on the account pay fees first."
    )
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class BalanceSerializer(serializers.Serializer):
    patient_id = serializers.IntegerField()
    currency = serializers.CharField()
    payers = serializers.DecimalField(12, 2, help_text="What the patient's payers owe.")
    patient = serializers.DecimalField(
        12, 2, help_text="What the patient owes (negative: a credit)."
    )
    total = serializers.DecimalField(12, 2)
    credit = serializers.DecimalField(
        12, 2, help_text="Payments allocated to no charge and no fee (negative: a credit)."
    )
    charges = ChargeBalanceSerializer(many=True)
    fees = MissedVisitFeeSerializer(
        many=True, help_text="No-show and late-cancellation fees on the account, newest first."
    )


class _BalanceView(APIView):
    permission_model = "billing.ledgerentry"
    self_service_actions = ("get",)

    def answer(self, request: Request, patient: Patient) -> Response:
        balance = balances.patient_balance_by_charge(patient=patient)
        audit.record(request, audit.READ, patient, fields=["balance"])
        return Response(BalanceSerializer(balance).data)


class PatientBalanceView(_BalanceView):
    """`/patients/{id}/balance/`: what the payers and the patient owe, in total and by
    charge (sums of the ledger). A patient reads only their own: another is a 404."""

    @extend_schema(responses=BalanceSerializer)
    def get(self, request: Request, patient_id: int) -> Response:
        patient = get_object_or_404(Patient, pk=patient_id)
        if not row_in_scope(
            user=request.user, permission="billing.view_ledgerentry", patient=patient
        ):
            raise NotFoundError("No such patient.")
        return self.answer(request, patient)


class MyBalanceView(_BalanceView):
    """`/me/balance/`: the signed-in patient's own balance."""

    @extend_schema(responses=BalanceSerializer)
    def get(self, request: Request) -> Response:
        user = request.user
        patient = Patient.objects.filter(user_id=user.pk).first() if user.pk else None
        if patient is None:
            raise NotFoundError("You have no patient record in this clinic.")
        return self.answer(request, patient)


# --- Transfers, write-offs and credit (billers) ---------------------------------------------------


class LedgerEntrySerializer(serializers.ModelSerializer):
    explanation = serializers.SerializerMethodField(
        help_text="The adjustment's group and reason codes (CARC, RARCs) in plain English; "
        "empty for an entry without codes."
    )

    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "patient",
            "party",
            "payer",
            "charge",
            "claim",
            "claim_line",
            "remittance",
            "payment",
            "kind",
            "amount",
            "group_code",
            "reason_code",
            "remark_codes",
            "explanation",
            "reverses",
            "write_off_reason",
            "memo",
            "posted_on",
            "created_at",
        ]
        read_only_fields = fields

    def get_explanation(self, entry: LedgerEntry) -> str:
        if not (entry.group_code and entry.reason_code):
            return ""
        return explain(entry.group_code, entry.reason_code, entry.remark_codes)


class LedgerEntryFilter(filters.FilterSet):
    posted_from = filters.DateFilter(field_name="posted_on", lookup_expr="gte")
    posted_to = filters.DateFilter(field_name="posted_on", lookup_expr="lte")
    kind = filters.MultipleChoiceFilter(choices=LedgerEntry.Kind.choices)

    class Meta:
        model = LedgerEntry
        fields = ["patient", "party", "payer", "kind", "charge", "claim", "remittance", "payment"]


class LedgerEntryViewSet(
    AuditedAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """`/ledger-entries/`: the money ledger itself, append-only (balances are its sums), for
    the staff who read balances and for integrators reconciling with their books: charges,
    payments, adjustments with their reason codes in plain English, transfers, refunds and
    reversals. By cursor, newest posting first (a clinic writes hundreds of thousands); filter
    by patient, party, payer, kind, charge, claim, remittance, payment and posting dates.
    Patients read their balance and statements instead (`/me/balance/`): entries carry the
    billers' memos."""

    permission_model = "billing.ledgerentry"
    serializer_class = LedgerEntrySerializer
    filterset_class = LedgerEntryFilter
    pagination_class = CursorPagination
    ordering_fields = ["posted_on", "created_at", "amount"]
    ordering = ["-posted_on", "-id"]

    def get_queryset(self) -> QuerySet[LedgerEntry]:
        return rows_in_scope(
            LedgerEntry.objects.all(),
            user=self.request.user,
            permission=required_permission(self.request, self) or "billing.view_ledgerentry",
            patient="patient",
        )


class TransferSerializer(serializers.Serializer):
    charge = serializers.PrimaryKeyRelatedField(queryset=Charge.objects.all())
    amount = serializers.DecimalField(12, 2, min_value=Decimal("0.01"))
    to = serializers.ChoiceField(
        LedgerEntry.Party.choices, help_text="Who owes it afterwards: the patient or the payer."
    )
    memo = serializers.CharField(required=False, allow_blank=True, max_length=300)


class WriteOffSerializer(serializers.Serializer):
    charge = serializers.PrimaryKeyRelatedField(queryset=Charge.objects.all())
    amount = serializers.DecimalField(12, 2, min_value=Decimal("0.01"))
    party = serializers.ChoiceField(
        LedgerEntry.Party.choices, help_text="Whose share is written off."
    )
    reason = serializers.ChoiceField(WriteOffReason.choices)
    group_code = serializers.ChoiceField(
        ["CO", "OA", "PI"],
        required=False,
        help_text="The payer's share only; default: the reason's (CO).",
    )
    reason_code = serializers.CharField(
        required=False,
        max_length=5,
        help_text="A CARC for the payer's share; default: the reason's (45, 29, 197).",
    )
    memo = serializers.CharField(required=False, allow_blank=True, max_length=300)


class TransferResultSerializer(serializers.Serializer):
    entries = LedgerEntrySerializer(many=True, help_text="The payer's entry, then the patient's.")


class CreditResultSerializer(serializers.Serializer):
    applied = LedgerEntrySerializer(many=True)
    balance = BalanceSerializer()


class _BillerMoneyView(APIView):
    """A biller's move of money on a charge: `billing.add_ledgerentry` (billers and clinic
    admins), `Idempotency-Key` answers a retry with what the key first made."""

    permission_model = "billing.ledgerentry"

    def key(self, request: Request) -> str | None:
        key = request.headers.get("Idempotency-Key") or None
        if key is not None and len(key) > 100:
            raise serializers.ValidationError({"Idempotency-Key": ["At most 100 characters."]})
        return key


class TransferView(_BillerMoneyView):
    """`POST /transfers/`: move part of a charge's balance from its payer to the patient
    (`to` patient) or back (`to` payer): a pair of entries that sum to zero, never more than
    the other party owes (409 `balance-too-small` naming `amount`). A move to the patient
    applies the patient's credit."""

    @extend_schema(
        request=TransferSerializer,
        parameters=[IDEMPOTENCY],
        responses={
            201: TransferResultSerializer,
            400: OpenApiResponse(description="Bad input, naming the field"),
            409: OpenApiResponse(description="balance-too-small (names amount)"),
        },
    )
    def post(self, request: Request) -> Response:
        data = TransferSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        pair = payments.responsibility_move(
            charge=v["charge"],
            amount=v["amount"],
            to=v["to"],
            memo=v.get("memo", ""),
            idempotency_key=self.key(request),
            by=request.user,
        )
        for entry in pair:
            audit.record(request, audit.CREATE, entry)
        body = {"entries": LedgerEntrySerializer(pair, many=True).data}
        return Response(body, status=status.HTTP_201_CREATED)


class WriteOffView(_BillerMoneyView):
    """`POST /write-offs/`: write part of a charge's balance off what the payer or the
    patient owes, with a reason (and, for the payer's share, a CAS group and CARC): one
    adjustment entry, never more than the party owes (409 `balance-too-small` naming
    `amount`)."""

    @extend_schema(
        request=WriteOffSerializer,
        parameters=[IDEMPOTENCY],
        responses={
            201: LedgerEntrySerializer,
            400: OpenApiResponse(description="Bad input, naming the field"),
            409: OpenApiResponse(description="balance-too-small (names amount)"),
        },
    )
    def post(self, request: Request) -> Response:
        data = WriteOffSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        entry = payments.adjustment_post(
            charge=v["charge"],
            amount=v["amount"],
            party=v["party"],
            write_off_reason=v["reason"],
            group_code=v.get("group_code", ""),
            reason_code=v.get("reason_code", ""),
            memo=v.get("memo", ""),
            idempotency_key=self.key(request),
            by=request.user,
        )
        audit.record(request, audit.CREATE, entry)
        return Response(LedgerEntrySerializer(entry).data, status=status.HTTP_201_CREATED)


class CreditApplyView(_BillerMoneyView):
    """`POST /patients/{id}/balance/apply-credit/`: apply the patient's unapplied credit to
    their oldest open balances now (it is applied on its own after payments and new patient
    balances too); answers what was applied and the balance after. Applying twice applies
    nothing the second time, so it needs no key."""

    @extend_schema(request=None, responses={200: CreditResultSerializer})
    def post(self, request: Request, patient_id: int) -> Response:
        patient = get_object_or_404(Patient, pk=patient_id)
        applied = credits.credit_apply(patient=patient, by=request.user)
        for entry in applied:
            audit.record(request, audit.CREATE, entry)
        balance = balances.patient_balance_by_charge(patient=patient)
        audit.record(request, audit.READ, patient, fields=["balance"])
        body = {
            "applied": LedgerEntrySerializer(applied, many=True).data,
            "balance": BalanceSerializer(balance).data,
        }
        return Response(body)


paths: list[URLPattern] = [
    path(
        "patients/<int:patient_id>/balance/", PatientBalanceView.as_view(), name="patient-balance"
    ),
    path("me/balance/", MyBalanceView.as_view(), name="my-balance"),
    path(
        "patients/<int:patient_id>/balance/apply-credit/",
        CreditApplyView.as_view(),
        name="patient-balance-apply-credit",
    ),
    path("transfers/", TransferView.as_view(), name="transfer"),
    path("write-offs/", WriteOffView.as_view(), name="write-off"),
]


def register(router: SimpleRouter) -> None:
    """Register this module's viewsets on the billing router."""
    router.register("remittances", RemittanceViewSet, basename="remittance")
    router.register("payments", PaymentViewSet, basename="payment")
    router.register("ledger-entries", LedgerEntryViewSet, basename="ledger-entry")

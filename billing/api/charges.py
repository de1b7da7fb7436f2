"""billing's API: fee schedules (with their fees), episodes of care (with ranked diagnoses),
charges (list, void, the charge run) and the unbilled visits with why each is not charged.

Views parse with a serializer and call `billing.charges`; the rules (overlapping schedules,
ICD-10-CM format and list, units against the authorization) are the services', refused as
problem details naming the field. Episodes and charges are a patient's data: every row served
or written is in the audit trail (AuditedAPIMixin)."""

from typing import ClassVar

from django.db.models import QuerySet
from django.urls import URLPattern
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from audit import services as audit
from audit.mixins import AuditedAPIMixin
from clinic.api import CursorPagination, ModelSerializer, Pagination, Serializer
from clinic.errors import PermissionDeniedError
from clinic.permissions import required_permission
from practice.models import Coverage, Patient, Payer, ServiceCode
from practice.selectors import row_in_scope, rows_in_scope
from scheduling.models import Appointment

from .. import charges as services
from ..models import Charge, Episode, EpisodeDiagnosis, Fee, FeeSchedule

# Paths that are not viewsets (uploads, reports), added to billing.api.urls.
paths: list[URLPattern] = []


# --- Fee schedules ------------------------------------------------------------------------------


class FeeSerializer(ModelSerializer):
    service_code = serializers.SlugRelatedField(
        slug_field="code", queryset=ServiceCode.objects.all()
    )

    class Meta:
        model = Fee
        fields = ["id", "service_code", "modifiers", "charge_per_unit", "allowed_per_unit"]
        read_only_fields = ["id"]
        # The services normalise and check modifiers ("hm 95" → "HM:95") and the uniqueness.
        extra_kwargs: ClassVar[dict] = {"modifiers": {"validators": []}}
        validators: ClassVar[list] = []


class FeeScheduleSerializer(ModelSerializer):
    """A schedule and its fees. On `PUT` / `PATCH`, `fees` (when sent) is the whole set: a fee
    is kept or changed by code + modifiers, one left out is removed (refused while charges
    were priced from it)."""

    fees = FeeSerializer(many=True, required=False)
    payer_name = serializers.CharField(source="payer.name", read_only=True, default=None)

    class Meta:
        model = FeeSchedule
        fields = [
            "id",
            "name",
            "payer",
            "payer_name",
            "effective_from",
            "effective_to",
            "fees",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        validators: ClassVar[list] = []  # the exclusion constraint is the service's to report


class FeeScheduleFilter(filters.FilterSet):
    self_pay = filters.BooleanFilter(
        field_name="payer", lookup_expr="isnull", help_text="The clinic's default schedules."
    )

    class Meta:
        model = FeeSchedule
        fields = ["payer"]


class FeeScheduleViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Fee schedules: the clinic's default (`payer` empty, self-pay prices) and each payer's,
    with effective dates that never overlap for one payer (400 on `effective_from`). Never
    deleted: end one (`effective_to`) and start the next."""

    permission_model = "billing.feeschedule"
    serializer_class = FeeScheduleSerializer
    filterset_class = FeeScheduleFilter
    ordering_fields = ["effective_from", "name"]
    ordering = ["payer_id", "-effective_from", "id"]

    def get_queryset(self) -> QuerySet[FeeSchedule]:
        return FeeSchedule.objects.select_related("payer").prefetch_related("fees__service_code")

    @staticmethod
    def _fees(data: dict) -> list[services.FeeSpec] | None:
        if "fees" not in data:
            return None
        return [
            services.FeeSpec(
                service_code=fee["service_code"],
                charge_per_unit=fee["charge_per_unit"],
                allowed_per_unit=fee.get("allowed_per_unit"),
                modifiers=fee.get("modifiers", ""),
            )
            for fee in data.pop("fees")
        ]

    def _render(self, schedule: FeeSchedule, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=schedule.pk)).data, code)

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        fees = self._fees(data) or []
        schedule = services.fee_schedule_create(fees=fees, **data)
        return self._render(schedule, status.HTTP_201_CREATED)

    def update(self, request: Request, *args, partial: bool = False, **kwargs) -> Response:
        instance = self.get_object()
        serializer = self.get_serializer(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        fees = self._fees(data)
        schedule = services.fee_schedule_update(schedule=instance, fees=fees, **data)
        return self._render(schedule)


# --- Episodes -----------------------------------------------------------------------------------


class DiagnosisSerializer(ModelSerializer):
    class Meta:
        model = EpisodeDiagnosis
        fields = ["rank", "code"]


class EpisodeSerializer(ModelSerializer):
    """An episode of care. `diagnoses` is written as ICD-10-CM codes in rank order (rank 1 the
    principal; at most 12) and read as `{rank, code}`; sent on `PUT` / `PATCH`, it replaces
    the list."""

    diagnoses = serializers.ListField(
        child=serializers.CharField(max_length=10),
        max_length=12,
        write_only=True,
        required=False,
        help_text="ICD-10-CM codes in rank order, e.g. ['F84.0'].",
    )
    ranked_diagnoses = DiagnosisSerializer(source="diagnoses", many=True, read_only=True)
    coverage = serializers.PrimaryKeyRelatedField(
        queryset=Coverage.objects.all(), allow_null=True, required=False
    )
    patient = serializers.PrimaryKeyRelatedField(queryset=Patient.objects.all())

    class Meta:
        model = Episode
        fields = [
            "id",
            "patient",
            "coverage",
            "title",
            "referring_provider_name",
            "referring_provider_npi",
            "supervising",
            "start_date",
            "end_date",
            "status",
            "diagnoses",
            "ranked_diagnoses",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]


class EpisodeViewSet(
    AuditedAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Episodes of care with their ranked diagnoses. A practitioner keeps those of the patients
    they see. Never deleted: close one (`status`)."""

    permission_model = "billing.episode"
    serializer_class = EpisodeSerializer
    filterset_fields = ["patient", "status", "coverage"]
    ordering_fields = ["start_date", "created_at"]
    ordering = ["-start_date", "id"]

    def get_queryset(self) -> QuerySet[Episode]:
        permission = required_permission(self.request, self) or "billing.view_episode"
        return rows_in_scope(
            Episode.objects.select_related("patient", "coverage").prefetch_related("diagnoses"),
            user=self.request.user,
            permission=permission,
            patient="patient",
        )

    def _parse(self, request: Request, *, instance=None, partial: bool = False) -> dict:
        serializer = self.get_serializer(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        permission = required_permission(request, self)
        assert permission is not None  # writes are never public
        patient = data.get("patient")
        if patient is not None and not row_in_scope(
            user=request.user, permission=permission, patient=patient
        ):
            raise PermissionDeniedError("This patient's episodes are not yours to change.")
        return data

    def _render(self, episode: Episode, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=episode.pk)).data, code)

    def create(self, request: Request, *args, **kwargs) -> Response:
        data = self._parse(request)
        episode = services.episode_create(
            patient=data.pop("patient"),
            start_date=data.pop("start_date"),
            diagnoses=data.pop("diagnoses", []),
            **data,
        )
        return self._render(episode, status.HTTP_201_CREATED)

    def update(self, request: Request, *args, partial: bool = False, **kwargs) -> Response:
        instance = self.get_object()
        data = self._parse(request, instance=instance, partial=partial)
        if data.get("patient", instance.patient) != instance.patient:
            raise serializers.ValidationError({"patient": ["An episode stays its patient's."]})
        data.pop("patient", None)
        episode = services.episode_update(
            episode=instance, diagnoses=data.pop("diagnoses", None), **data
        )
        return self._render(episode)


# --- Charges ------------------------------------------------------------------------------------


class ChargeSerializer(ModelSerializer):
    service_code = serializers.CharField(source="service_code.code", read_only=True)
    payer_name = serializers.CharField(source="payer.name", read_only=True, default=None)
    patient_name = serializers.CharField(source="patient.__str__", read_only=True)

    class Meta:
        model = Charge
        fields = [
            "id",
            "appointment",
            "patient",
            "patient_name",
            "episode",
            "coverage",
            "payer",
            "payer_name",
            "fee",
            "service_code",
            "service_date",
            "units",
            "modifiers",
            "place_of_service",
            "diagnosis_pointers",
            "amount",
            "expected_allowed",
            "rendering",
            "rendering_npi",
            "supervising",
            "supervising_npi",
            "authorization",
            "authorization_number",
            "status",
            "void_reason",
            "created_at",
        ]
        read_only_fields = fields


class ChargeFilter(filters.FilterSet):
    service_date_from = filters.DateFilter(field_name="service_date", lookup_expr="gte")
    service_date_to = filters.DateFilter(field_name="service_date", lookup_expr="lte")
    status = filters.MultipleChoiceFilter(choices=Charge.Status.choices)
    self_pay = filters.BooleanFilter(field_name="payer", lookup_expr="isnull")
    payer = filters.ModelChoiceFilter(queryset=Payer.objects.all())

    class Meta:
        model = Charge
        fields = ["patient", "payer", "status", "appointment", "rendering", "episode"]


class VoidSerializer(Serializer):
    reason = serializers.CharField(max_length=300)


class RunSerializer(Serializer):
    appointments = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        max_length=500,
        required=False,
        help_text="Only these completed visits (default: every one not yet charged).",
    )


class ReasonSerializer(Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()


class UnbilledSerializer(Serializer):
    appointment = serializers.IntegerField(source="appointment.pk")
    patient = serializers.IntegerField(source="appointment.patient_id")
    patient_name = serializers.CharField(source="appointment.patient.__str__")
    practitioner = serializers.IntegerField(source="appointment.practitioner_id")
    practitioner_name = serializers.CharField(source="appointment.practitioner.display_name")
    start = serializers.DateTimeField(source="appointment.start")
    service_code = serializers.CharField(
        source="appointment.appointment_type.service_code.code", default=None
    )
    billable = serializers.SerializerMethodField()
    reasons = ReasonSerializer(many=True)

    def get_billable(self, item: services.UnbilledVisit) -> bool:
        return not item.reasons


RUN_RESULT = inline_serializer(
    "ChargeRunResult",
    {
        "created": serializers.IntegerField(),
        "skipped": serializers.IntegerField(),
        "charges": serializers.ListField(child=serializers.IntegerField()),
        "failed": serializers.DictField(child=serializers.CharField()),
    },
)


class ChargeViewSet(
    AuditedAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Charges, one per completed visit and code, made by the charge run (nightly, or
    `POST /charges/run/`), never typed in. A practitioner reads the charges of their own
    visits, a patient their own. `void` takes a charge not on a claim off the books (its
    ledger entry reversed); `unbilled` lists completed visits without a charge and why."""

    permission_model = "billing.charge"
    permission_actions: ClassVar[dict[str, str]] = {
        "void": "change",
        "run": "add",
        "unbilled": "view",
    }
    self_service_actions = ("list", "retrieve", "metadata")
    serializer_class = ChargeSerializer
    filterset_class = ChargeFilter
    pagination_class = CursorPagination
    ordering_fields = ["service_date", "created_at", "amount"]
    ordering = ["-service_date", "-id"]

    def _permission(self) -> str:
        return required_permission(self.request, self) or "billing.view_charge"

    def get_queryset(self) -> QuerySet[Charge]:
        return rows_in_scope(
            Charge.objects.select_related("service_code", "payer", "patient"),
            user=self.request.user,
            permission=self._permission(),
            practitioner="rendering",
            patient="patient",
        )

    @extend_schema(
        request=VoidSerializer,
        responses={
            200: ChargeSerializer,
            409: OpenApiResponse(description="charge-state: on a claim, or already void"),
        },
    )
    @action(detail=True, methods=["post"])
    def void(self, request: Request, pk=None) -> Response:
        charge = self.get_object()
        data = VoidSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        charge = services.charge_void(
            charge=charge, reason=data.validated_data["reason"], by=request.user
        )
        return Response(self.get_serializer(charge).data)

    @extend_schema(request=RunSerializer, responses={200: RUN_RESULT})
    @action(detail=False, methods=["post"])
    def run(self, request: Request) -> Response:
        """Charge the completed visits that can be charged now (the nightly run, on demand).
        Each visit in its own transaction; what cannot be charged stays on `unbilled`."""
        data = RunSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ids = data.validated_data.get("appointments")
        if ids is not None:
            ids = list(
                rows_in_scope(
                    Appointment.objects.filter(pk__in=ids),
                    user=request.user,
                    permission=self._permission(),
                    practitioner="practitioner",
                    patient="patient",
                ).values_list("pk", flat=True)
            )
        result = services.charges_create_for_completed(by=request.user, appointment_ids=ids)
        for charge in Charge.objects.filter(pk__in=result.charges):
            audit.record(request, audit.CREATE, charge)
        return Response(
            {
                "created": result.created,
                "skipped": result.skipped,
                "charges": result.charges,
                "failed": {str(k): v for k, v in result.failed.items()},
            }
        )

    @extend_schema(
        responses={200: UnbilledSerializer(many=True)},
        filters=False,
        parameters=[OpenApiParameter("patient", OpenApiTypes.INT, description="One patient's.")],
    )
    @action(
        detail=False,
        methods=["get"],
        filterset_class=None,
        ordering_fields=[],
        pagination_class=Pagination,  # a list of visits, not a queryset: pages by number
    )
    def unbilled(self, request: Request) -> Response:
        """Completed visits without a live charge, oldest first, each with every reason it
        cannot be charged yet (`billable` when none: the next run charges it)."""
        visits = rows_in_scope(
            Appointment.objects.all(),
            user=request.user,
            permission=self._permission(),
            practitioner="practitioner",
            patient="patient",
        )
        patient = request.query_params.get("patient")
        if patient is not None:
            if not patient.isdigit():
                raise serializers.ValidationError({"patient": ["A patient id."]})
            visits = visits.filter(patient_id=int(patient))
        items = services.unbilled_visits(visits=visits)
        page = self.paginate_queryset(items)  # a list pages too
        rows = page if page is not None else items
        self.audit_serve(item.appointment for item in rows)
        data = UnbilledSerializer(rows, many=True).data
        return self.get_paginated_response(data) if page is not None else Response(data)


def register(router: SimpleRouter) -> None:
    """Register this module's viewsets on the billing router."""
    router.register("fee-schedules", FeeScheduleViewSet, basename="fee-schedule")
    router.register("episodes", EpisodeViewSet, basename="episode")
    router.register("charges", ChargeViewSet, basename="charge")

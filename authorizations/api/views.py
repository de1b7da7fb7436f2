from datetime import timedelta
from typing import ClassVar

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from audit import services as audit
from audit.mixins import AuditedAPIMixin
from clinic.errors import PermissionDeniedError
from clinic.inputs import SCHEDULE_YEARS
from clinic.permissions import required_permission
from practice.models import Patient
from practice.selectors import patient_get_for_user, row_in_scope, rows_in_scope

from .. import selectors, services
from ..models import Authorization, AuthorizationLine, AuthorizationRequest, UnitReservation
from . import serializers as s

IDEMPOTENCY = OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER)


class AuthorizationFilter(filters.FilterSet):
    # Bounded like every schedule date: ?expiring=64020016 overflowed the date (a 500).
    expiring = filters.NumberFilter(
        method="filter_expiring",
        min_value=0,
        max_value=SCHEDULE_YEARS * 366,
        help_text="Ends within N days.",
    )
    alert = filters.BooleanFilter(method="filter_alert", help_text="At or above threshold.")

    class Meta:
        model = Authorization
        fields = ["patient", "status", "coverage"]

    def filter_expiring(self, queryset, name, value):
        today = timezone.localdate()
        return queryset.filter(
            status__in=selectors.LIVE,
            end_date__gte=today,
            end_date__lte=today + timedelta(days=int(value)),
        )

    def filter_alert(self, queryset, name, value):
        over = selectors.authorizations_over_threshold().values("pk")
        return queryset.filter(pk__in=over) if value else queryset.exclude(pk__in=over)


class AuthorizationViewSet(
    AuditedAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Prior authorizations with their lines, counters, units remaining and alerts. Never
    deleted: set `status` to cancelled. On `PUT` and `PATCH`, `lines` (when sent) is the whole
    set: a line with its `id` is kept and changed, one without is added, one left out is
    removed (refused while the ledger has entries for it). A practitioner reads those of the
    patients they see, a patient their own."""

    permission_model = "authorizations.authorization"
    self_service_actions = ("list", "retrieve", "metadata")
    serializer_class = s.AuthorizationSerializer
    filterset_class = AuthorizationFilter
    ordering_fields = ["end_date", "start_date", "created_at"]
    ordering = ["end_date", "id"]

    def get_queryset(self) -> QuerySet[Authorization]:
        permission = required_permission(self.request, self) or "authorizations.view_authorization"
        return rows_in_scope(
            selectors.authorization_list(),
            user=self.request.user,
            permission=permission,
            patient="patient",
        )

    def _parse(self, request: Request, *, instance=None, partial: bool = False) -> dict:
        serializer = self.get_serializer(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        patient = data.get("patient")
        permission = required_permission(request, self)
        assert permission is not None  # writes are never public
        if patient is not None and not row_in_scope(
            user=request.user, permission=permission, patient=patient
        ):
            raise PermissionDeniedError("This patient's authorizations are not yours to change.")
        if "lines" in data:
            data["lines"] = [services.LineSpec(**line) for line in data["lines"]]
        return data

    def _render(self, authorization: Authorization, *, code: int = status.HTTP_200_OK):
        fresh = self.get_queryset().get(pk=authorization.pk)
        return Response(self.get_serializer(fresh).data, status=code)

    def create(self, request: Request, *args, **kwargs) -> Response:
        authorization = services.authorization_create(**self._parse(request))
        return self._render(authorization, code=status.HTTP_201_CREATED)

    def update(self, request: Request, *args, partial: bool = False, **kwargs) -> Response:
        instance = self.get_object()
        data = self._parse(request, instance=instance, partial=partial)
        lines = data.pop("lines", None)
        authorization = services.authorization_update(
            authorization=instance, data=data, lines=lines
        )
        return self._render(authorization)


class LineActionView(APIView):
    """Base for `/authorizations/{id}/lines/{line_id}/<action>/`: units drawn on a line through
    the ledger's services, which needs `change` on the line."""

    permission_model = "authorizations.authorizationline"
    permission_actions: ClassVar[dict[str, str]] = {"post": "change"}

    def line(self, request: Request, authorization_id: int, line_id: int) -> AuthorizationLine:
        lines = rows_in_scope(
            AuthorizationLine.objects.select_related("authorization"),
            user=request.user,
            permission="authorizations.change_authorizationline",
            patient="authorization__patient",
        )
        return get_object_or_404(lines, pk=line_id, authorization_id=authorization_id)

    def reservation(self, line: AuthorizationLine, reservation_id: int | None) -> UnitReservation:
        if reservation_id is None:
            raise ValidationError({"reservation": ["Name the reservation."]})
        return get_object_or_404(UnitReservation, pk=reservation_id, line=line)


class ReserveView(LineActionView):
    @extend_schema(
        request=s.ReserveSerializer,
        parameters=[IDEMPOTENCY],
        responses={
            201: s.ReservationSerializer,
            409: OpenApiResponse(description="authorization-exhausted (units_left) or weekly cap"),
        },
    )
    def post(self, request: Request, authorization_id: int, line_id: int) -> Response:
        line = self.line(request, authorization_id, line_id)
        data = s.ReserveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reservation = services.units_reserve(
            line=line,
            units=data.validated_data["units"],
            service_date=data.validated_data["service_date"],
            by=request.user,
            reference=data.validated_data["reference"],
            idempotency_key=request.headers.get("Idempotency-Key") or None,
        )
        audit.record(request, audit.CREATE, reservation)
        return Response(s.ReservationSerializer(reservation).data, status=status.HTTP_201_CREATED)


class ReleaseView(LineActionView):
    @extend_schema(
        request=s.ReservationActionSerializer,
        parameters=[IDEMPOTENCY],
        responses=s.ReservationSerializer,
    )
    def post(self, request: Request, authorization_id: int, line_id: int) -> Response:
        line = self.line(request, authorization_id, line_id)
        data = s.ReservationActionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reservation = self.reservation(line, data.validated_data.get("reservation"))
        released = services.units_release(reservation=reservation, by=request.user)
        audit.record(request, audit.UPDATE, released, fields=["state"])
        return Response(s.ReservationSerializer(released).data)


class ConsumeView(LineActionView):
    @extend_schema(
        request=s.ReservationActionSerializer,
        parameters=[IDEMPOTENCY],
        responses={200: s.ReservationSerializer, 201: s.ReservationSerializer},
    )
    def post(self, request: Request, authorization_id: int, line_id: int) -> Response:
        """Consume a reservation (`reservation`), or record `units` used without one."""
        line = self.line(request, authorization_id, line_id)
        data = s.ReservationActionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        if v.get("reservation") is not None:
            reservation = self.reservation(line, v["reservation"])
            consumed = services.units_consume(reservation=reservation, by=request.user)
            audit.record(request, audit.UPDATE, consumed, fields=["state"])
            return Response(s.ReservationSerializer(consumed).data)
        if not v.get("units"):
            raise ValidationError({"reservation": ["Give a reservation, or units used."]})
        used = services.units_use(
            line=line,
            units=v["units"],
            service_date=v.get("service_date") or timezone.localdate(),
            by=request.user,
            reference=v["reference"],
            idempotency_key=request.headers.get("Idempotency-Key") or None,
        )
        audit.record(request, audit.CREATE, used)
        return Response(s.ReservationSerializer(used).data, status=status.HTTP_201_CREATED)


def _requesting_patient(request: Request, patient: Patient | None) -> Patient:
    """Whose request it is: a patient asks for themselves only (their own record when the
    body names none); staff with `add` name the patient, within their grant's scope."""
    user = request.user
    if user.has_perm(ADD_REQUEST):
        if patient is None:
            raise ValidationError({"patient": ["Name the patient."]})
        if not row_in_scope(user=user, permission=ADD_REQUEST, patient=patient):
            raise PermissionDeniedError("This patient's requests are not yours to make.")
        return patient
    own = patient_get_for_user(user=user) if isinstance(user, User) else None
    if own is None:
        raise PermissionDeniedError("Your account is not linked to a patient record.")
    if patient is not None and patient.pk != own.pk:
        raise PermissionDeniedError("Patients ask only for themselves.")
    return own


ADD_REQUEST = "authorizations.add_authorizationrequest"


class AuthorizationRequestViewSet(
    AuditedAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Requests for an assessment / authorization: the front desk's queue (oldest first).
    A patient asks for themselves (`POST`, one open request per code: asking again answers
    the open one, 200) and reads their own; the front desk and clinic admins approve
    (creating the authorization) or decline with a reason the patient reads; a decided
    request answers 409 `authorization-request-decided`."""

    permission_model = "authorizations.authorizationrequest"
    permission_actions: ClassVar[dict[str, str]] = {"approve": "change", "decline": "change"}
    self_service_actions = ("list", "retrieve", "metadata", "create")
    serializer_class = s.AuthorizationRequestSerializer
    filterset_fields: ClassVar[list[str]] = ["status", "patient"]
    ordering_fields = ["requested_at", "decided_at"]
    ordering = ["requested_at", "id"]

    def get_queryset(self) -> QuerySet[AuthorizationRequest]:
        permission = required_permission(self.request, self) or (
            "authorizations.view_authorizationrequest"
        )
        if permission == ADD_REQUEST:
            permission = "authorizations.view_authorizationrequest"
        return rows_in_scope(
            AuthorizationRequest.objects.select_related("service_code", "authorization"),
            user=self.request.user,
            permission=permission,
            patient="patient",
        )

    def _render(self, found: AuthorizationRequest, *, code: int = status.HTTP_200_OK):
        fresh = self.get_queryset().get(pk=found.pk)
        return Response(self.get_serializer(fresh).data, status=code)

    @extend_schema(
        request=s.AuthorizationRequestCreateSerializer,
        responses={
            201: s.AuthorizationRequestSerializer,
            200: OpenApiResponse(
                s.AuthorizationRequestSerializer, description="the request already open"
            ),
        },
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        data = s.AuthorizationRequestCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        patient = _requesting_patient(request, v.get("patient"))
        open_before = AuthorizationRequest.objects.filter(
            patient=patient,
            service_code=v["service_code"],
            status=AuthorizationRequest.Status.PENDING,
        ).exists()
        made = services.authorization_request_create(
            patient=patient,
            service_code=v["service_code"],
            by=request.user,
            visit_name=v.get("visit_name", ""),
            message=v.get("message", ""),
        )
        code = status.HTTP_200_OK if open_before else status.HTTP_201_CREATED
        return self._render(made, code=code)

    @extend_schema(
        request=s.AuthorizationRequestApproveSerializer,
        responses={
            200: s.AuthorizationRequestSerializer,
            409: OpenApiResponse(description="authorization-request-decided"),
        },
    )
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk=None) -> Response:
        """Approve: creates the authorization (number, dates, units for the requested code,
        the request's coverage unless another of the patient's is named)."""
        found = self.get_object()
        data = s.AuthorizationRequestApproveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        coverage = v.get("coverage")
        if coverage is not None and coverage.patient_id != found.patient_id:
            raise ValidationError({"coverage": ["Not a coverage of this patient."]})
        decided = services.authorization_request_approve(
            request=found,
            number=v["number"],
            start_date=v["start_date"],
            end_date=v["end_date"],
            units_authorized=v["units_authorized"],
            weekly_cap=v.get("weekly_cap"),
            coverage=coverage,
            by=request.user,
        )
        assert decided.authorization is not None
        audit.record(request, audit.CREATE, decided.authorization)
        return self._render(decided)

    @extend_schema(
        request=s.AuthorizationRequestDeclineSerializer,
        responses={
            200: s.AuthorizationRequestSerializer,
            409: OpenApiResponse(description="authorization-request-decided"),
        },
    )
    @action(detail=True, methods=["post"])
    def decline(self, request: Request, pk=None) -> Response:
        """Decline with a `reason` the patient reads on their pages."""
        found = self.get_object()
        data = s.AuthorizationRequestDeclineSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decided = services.authorization_request_decline(
            request=found, reason=data.validated_data["reason"], by=request.user
        )
        return self._render(decided)

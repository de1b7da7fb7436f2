from datetime import timedelta

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clinic.errors import PermissionDeniedError
from clinic.permissions import (
    BILLER,
    CLINIC_ADMIN,
    FRONT_DESK,
    INTEGRATOR,
    PRACTITIONER,
    user_roles,
)

from .. import selectors, services
from ..models import Authorization, AuthorizationLine, UnitReservation
from . import serializers as s

MANAGERS = frozenset({CLINIC_ADMIN, FRONT_DESK, INTEGRATOR})
READERS = MANAGERS | {BILLER, PRACTITIONER}
IDEMPOTENCY = OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER)


class AuthorizationPermission(BasePermission):
    """Staff read; front desk, clinic admin and integrators manage; patients read their own."""

    def has_permission(self, request, view) -> bool:
        roles = user_roles(request.user)
        if request.method in SAFE_METHODS:
            return bool(roles & (READERS | {"patient"}))
        return bool(roles & MANAGERS)


class AuthorizationFilter(filters.FilterSet):
    expiring = filters.NumberFilter(method="filter_expiring", help_text="Ends within N days.")
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
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Prior authorizations with their lines, counters, units remaining and alerts. Never
    deleted: set `status` to cancelled. On `PUT` and `PATCH`, `lines` (when sent) is the whole
    set: a line with its `id` is kept and changed, one without is added, one left out is
    removed (refused while the ledger has entries for it)."""

    permission_classes = [IsAuthenticated, AuthorizationPermission]
    serializer_class = s.AuthorizationSerializer
    filterset_class = AuthorizationFilter
    ordering_fields = ["end_date", "start_date", "created_at"]
    ordering = ["end_date", "id"]

    def get_queryset(self) -> QuerySet[Authorization]:
        qs = selectors.authorization_list()
        if not user_roles(self.request.user) & READERS:
            qs = qs.filter(patient__user=self.request.user)
        return qs

    def _parse(self, request: Request, *, instance=None, partial: bool = False) -> dict:
        serializer = self.get_serializer(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
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
    """Base for `/authorizations/{id}/lines/{line_id}/<action>/` (integrators and staff)."""

    permission_classes = [IsAuthenticated]

    def line(self, request: Request, authorization_id: int, line_id: int) -> AuthorizationLine:
        if not user_roles(request.user) & MANAGERS:
            raise PermissionDeniedError("Only front desk, clinic admins and integrators do this.")
        return get_object_or_404(
            AuthorizationLine.objects.select_related("authorization"),
            pk=line_id,
            authorization_id=authorization_id,
        )

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
        return Response(s.ReservationSerializer(used).data, status=status.HTTP_201_CREATED)

from datetime import timedelta
from typing import ClassVar

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clinic.errors import PermissionDeniedError
from clinic.permissions import required_permission
from practice.selectors import row_in_scope, rows_in_scope

from .. import selectors, services
from ..models import Authorization, AuthorizationLine, UnitReservation
from . import serializers as s

IDEMPOTENCY = OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER)


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

"""Scheduling API: booking, conflict checks, lifecycle, lists, series, types, hours, time off,
calendars. Availability and smart booking have modules of their own beside this one."""

import zoneinfo
from datetime import timedelta

from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
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
    PATIENT,
    PRACTITIONER,
    HasRole,
    user_roles,
)
from practice.models import Patient

from .. import availability, selectors, series, services
from ..calendar import appointment_ics, practitioner_feed_ics
from ..models import (
    Appointment,
    AppointmentSeries,
    AppointmentType,
    CalendarFeed,
    TimeOff,
)
from ..models import WorkingHours as WorkingHoursModel
from . import serializers as s

DESK = frozenset({CLINIC_ADMIN, FRONT_DESK, INTEGRATOR})  # act on any appointment
SCHEDULERS = DESK | {PRACTITIONER}
READERS = SCHEDULERS | {BILLER}


def _only(user, *roles: str) -> bool:
    """True when every role of the user is among `roles` (e.g. a plain patient)."""
    have = user_roles(user)
    return bool(have) and have <= set(roles)


def acting_patient(request: Request, patient: Patient | None) -> Patient:
    """Staff name the patient; a patient books for themselves only."""
    if user_roles(request.user) & SCHEDULERS:
        if patient is None:
            raise PermissionDeniedError(
                "Name the patient.", extra={"errors": {"patient": ["Required."]}}
            )
        return patient
    own = selectors.patient_for_user(request.user)
    if own is None:
        raise PermissionDeniedError("Your account is not linked to a patient record.")
    if patient is not None and patient.pk != own.pk:
        raise PermissionDeniedError("Patients book only for themselves.")
    return own


def _source(request: Request) -> str:
    return Appointment.Source.API


def _activate_tz(request: Request) -> None:
    name = request.query_params.get("tz")
    if name:
        try:
            timezone.activate(zoneinfo.ZoneInfo(name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass


class AppointmentFilter(filters.FilterSet):
    start_after = filters.IsoDateTimeFilter(field_name="start", lookup_expr="gte")
    start_before = filters.IsoDateTimeFilter(field_name="start", lookup_expr="lt")
    status = filters.MultipleChoiceFilter(choices=Appointment.Status.choices)

    class Meta:
        model = Appointment
        fields = ["practitioner", "patient", "status", "source", "appointment_type", "series"]


class AppointmentPermission(BasePermission):
    """Staff schedule; patients read and change their own; billers read."""

    def has_permission(self, request, view) -> bool:
        roles = user_roles(request.user)
        if request.method in SAFE_METHODS:
            return bool(roles & (READERS | {PATIENT}))
        if view.action in ("check_in", "complete", "no_show"):
            return bool(roles & SCHEDULERS)
        return bool(roles & (SCHEDULERS | {PATIENT}))


class AppointmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Appointments. Create with `POST` (an `Idempotency-Key` header makes a retry safe);
    change with the actions; never deleted (cancel instead)."""

    permission_classes = [IsAuthenticated, AppointmentPermission]
    serializer_class = s.AppointmentSerializer
    filterset_class = AppointmentFilter
    ordering_fields = ["start", "created_at"]
    ordering = ["start", "id"]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        _activate_tz(request)

    def get_queryset(self) -> QuerySet[Appointment]:
        user = self.request.user
        qs = selectors.appointment_list()
        roles = user_roles(user)
        if not roles & (DESK | {BILLER}):
            if PRACTITIONER in roles:
                qs = qs.filter(practitioner__user=user)
            else:
                qs = qs.filter(patient__user=user)
        return qs

    def get_serializer_context(self):
        # Staff notes are not shown to patients.
        return {**super().get_serializer_context(), "hide_notes": _only(self.request.user, PATIENT)}

    @extend_schema(
        request=s.AppointmentCreateSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER)],
        responses={
            201: s.AppointmentSerializer,
            200: OpenApiResponse(s.AppointmentSerializer, "A replay of an earlier request"),
            409: OpenApiResponse(description="slot-unavailable: conflicts and alternatives"),
            422: OpenApiResponse(description="booking-refused: a rule names the field"),
        },
    )
    def create(self, request: Request) -> Response:
        data = s.AppointmentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        patient = acting_patient(request, v.get("patient"))
        appointment = services.appointment_book(
            patient=patient,
            practitioner=v["practitioner"],
            appointment_type=v["appointment_type"],
            start=v["start"],
            booked_by=request.user,
            source=_source(request),
            location=v.get("location"),
            telehealth=v.get("telehealth"),
            notes=v["notes"],
            overbook=v["overbook"],
            idempotency_key=request.headers.get("Idempotency-Key") or None,
        )
        replayed = getattr(appointment, "replayed", False)
        response = Response(
            self.get_serializer(appointment).data,
            status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED,
        )
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    @extend_schema(
        request=s.ConflictCheckSerializer,
        responses=s.ConflictCheckResultSerializer,
    )
    @action(detail=False, methods=["post"], url_path="check")
    def check(self, request: Request) -> Response:
        """Would this slot conflict? Answers without booking."""
        if not user_roles(request.user) & (SCHEDULERS | {PATIENT}):
            raise PermissionDeniedError()
        data = s.ConflictCheckSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        return Response(
            availability.slot_conflicts(
                practitioner=v["practitioner"],
                start=v["start"],
                appointment_type=v.get("appointment_type"),
                end=v.get("end"),
            )
        )

    @extend_schema(request=s.CancelSerializer, responses=s.AppointmentSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk=None) -> Response:
        data = s.CancelSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        appointment = services.appointment_cancel(
            appointment=self.get_object(),
            by=request.user,
            reason=data.validated_data["reason"],
        )
        return Response(self.get_serializer(appointment).data)

    @extend_schema(request=s.RescheduleSerializer, responses=s.AppointmentSerializer)
    @action(detail=True, methods=["post"])
    def reschedule(self, request: Request, pk=None) -> Response:
        data = s.RescheduleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        appointment = services.appointment_reschedule(
            appointment=self.get_object(),
            start=data.validated_data["start"],
            by=request.user,
            overbook=data.validated_data["overbook"],
        )
        return Response(self.get_serializer(appointment).data)

    @extend_schema(request=None, responses=s.AppointmentSerializer)
    @action(detail=True, methods=["post"], url_path="check-in")
    def check_in(self, request: Request, pk=None) -> Response:
        appointment = services.appointment_check_in(appointment=self.get_object(), by=request.user)
        return Response(self.get_serializer(appointment).data)

    @extend_schema(request=None, responses=s.AppointmentSerializer)
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk=None) -> Response:
        appointment = services.appointment_complete(appointment=self.get_object(), by=request.user)
        return Response(self.get_serializer(appointment).data)

    @extend_schema(request=None, responses=s.AppointmentSerializer)
    @action(detail=True, methods=["post"], url_path="no-show")
    def no_show(self, request: Request, pk=None) -> Response:
        appointment = services.appointment_no_show(appointment=self.get_object(), by=request.user)
        return Response(self.get_serializer(appointment).data)

    @extend_schema(responses={(200, "text/calendar"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def ics(self, request: Request, pk=None) -> HttpResponse:
        appointment = self.get_object()
        response = HttpResponse(appointment_ics(appointment), content_type="text/calendar")
        response["Content-Disposition"] = f'attachment; filename="appointment-{appointment.pk}.ics"'
        return response


class PatientAppointmentsView(mixins.ListModelMixin, viewsets.GenericViewSet):
    """`/patients/{id}/appointments/` (staff, or the patient themselves)."""

    permission_classes = [IsAuthenticated]
    serializer_class = s.AppointmentSerializer
    filterset_class = AppointmentFilter
    ordering = ["start", "id"]

    def get_queryset(self) -> QuerySet[Appointment]:
        patient = get_object_or_404(Patient, pk=self.kwargs["patient_id"])
        roles = user_roles(self.request.user)
        if not roles & READERS and patient.user_id != self.request.user.pk:
            raise PermissionDeniedError("You may see only your own appointments.")
        qs = selectors.appointment_list(patient=patient)
        if not roles & (DESK | {BILLER}) and PRACTITIONER in roles:
            qs = qs.filter(practitioner__user=self.request.user)
        return qs


class MyAppointmentsView(mixins.ListModelMixin, viewsets.GenericViewSet):
    """`/me/appointments/`: the signed-in patient's visits (or a practitioner's schedule)."""

    permission_classes = [IsAuthenticated]
    serializer_class = s.AppointmentSerializer
    filterset_class = AppointmentFilter
    ordering = ["start", "id"]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        _activate_tz(request)

    def get_queryset(self) -> QuerySet[Appointment]:
        user = self.request.user
        qs = selectors.appointment_list()
        if PRACTITIONER in user_roles(user) and not _only(user, PATIENT):
            return qs.filter(practitioner__user=user)
        return qs.filter(patient__user=user)


class SeriesViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Recurring bookings (RFC 5545 rules), all or nothing unless `partial`."""

    permission_classes = [IsAuthenticated, AppointmentPermission]
    serializer_class = s.SeriesSerializer

    def get_queryset(self) -> QuerySet[AppointmentSeries]:
        qs = AppointmentSeries.objects.all()
        roles = user_roles(self.request.user)
        if not roles & (DESK | {BILLER}):
            if PRACTITIONER in roles:
                return qs.filter(practitioner__user=self.request.user)
            return qs.filter(patient__user=self.request.user)
        return qs

    @extend_schema(
        request=s.SeriesCreateSerializer,
        responses={
            201: s.SeriesResultSerializer,
            409: OpenApiResponse(description="series-conflict: each occurrence with alternatives"),
        },
    )
    def create(self, request: Request) -> Response:
        data = s.SeriesCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        result = series.appointment_series_book(
            patient=acting_patient(request, v.get("patient")),
            practitioner=v["practitioner"],
            appointment_type=v["appointment_type"],
            first_start=v["start"],
            rrule=v["rrule"],
            booked_by=request.user,
            source=_source(request),
            timezone_name=v.get("timezone"),
            location=v.get("location"),
            telehealth=v.get("telehealth"),
            partial=v["partial"],
        )
        body = {
            "series": s.SeriesSerializer(result.series).data if result.series else None,
            "booked": s.AppointmentSerializer(result.booked, many=True).data,
            "skipped": result.skipped,
        }
        return Response(body, status=status.HTTP_201_CREATED if result.booked else 409)

    @extend_schema(request=s.SeriesCancelSerializer, responses=s.AppointmentSerializer(many=True))
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk=None) -> Response:
        """Cancel the rest of the series (from `after`, default now)."""
        data = s.SeriesCancelSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cancelled = series.appointment_series_cancel(
            series=self.get_object(),
            by=request.user,
            reason=data.validated_data["reason"],
            after=data.validated_data.get("after"),
        )
        return Response(s.AppointmentSerializer(cancelled, many=True).data)


class ReadAnyWriteAdmin(BasePermission):
    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return CLINIC_ADMIN in user_roles(request.user)


class AppointmentTypeViewSet(viewsets.ModelViewSet):
    """What can be booked. Anyone may read; the clinic admin edits. Retire with
    `is_active=false` (no delete)."""

    permission_classes = [ReadAnyWriteAdmin]
    serializer_class = s.AppointmentTypeSerializer
    filterset_fields = ["mode", "is_active", "practitioners"]
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def get_queryset(self):
        return AppointmentType.objects.prefetch_related("practitioners")


class StaffManages(HasRole):
    """Front desk and clinic admin manage; practitioners read."""

    roles = frozenset({CLINIC_ADMIN, FRONT_DESK})

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return bool(user_roles(request.user) & READERS)
        return super().has_permission(request, view)


class WorkingHoursViewSet(viewsets.ModelViewSet):
    permission_classes = [IsAuthenticated, StaffManages]
    serializer_class = s.WorkingHoursSerializer
    queryset = WorkingHoursModel.objects.all()
    filterset_fields = ["practitioner", "weekday", "location"]


class TimeOffViewSet(viewsets.ModelViewSet):
    permission_classes = [IsAuthenticated, StaffManages]
    serializer_class = s.TimeOffSerializer
    queryset = TimeOff.objects.all()
    filterset_fields = ["practitioner"]


class CalendarFeedView(APIView):
    """Create (or rotate) a practitioner's secret iCalendar subscription URL."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=s.CalendarFeedSerializer, responses=s.CalendarFeedResultSerializer)
    def post(self, request: Request) -> Response:
        data = s.CalendarFeedSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        practitioner = data.validated_data["practitioner"]
        roles = user_roles(request.user)
        if CLINIC_ADMIN not in roles and practitioner.user_id != request.user.pk:
            raise PermissionDeniedError("Only the practitioner or a clinic admin may do this.")
        feed, created = CalendarFeed.objects.get_or_create(practitioner=practitioner)
        if not created:
            feed.token = CalendarFeed._meta.get_field("token").default()
            feed.save(update_fields=["token"])
        url = request.build_absolute_uri(f"/calendar/{feed.token}.ics")
        return Response({"practitioner": practitioner.pk, "url": url}, status=201)


def calendar_feed(request, token: str) -> HttpResponse:
    """`/calendar/<token>.ics`: a practitioner's visits from 30 days back to 180 ahead."""
    feed = get_object_or_404(CalendarFeed.objects.select_related("practitioner"), token=token)
    now = timezone.now()
    appointments = (
        Appointment.objects.filter(
            practitioner=feed.practitioner,
            start__gte=now - timedelta(days=30),
            start__lt=now + timedelta(days=180),
        )
        .select_related("patient", "appointment_type", "location")
        .order_by("start")
    )
    body = practitioner_feed_ics(f"{feed.practitioner.display_name} – Clinic", appointments)
    return HttpResponse(body, content_type="text/calendar; charset=utf-8")

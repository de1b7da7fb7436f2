"""Scheduling API: booking, conflict checks, lifecycle, lists, series, types, hours, time off,
calendars. Availability and smart booking have modules of their own beside this one."""

import zoneinfo
from datetime import timedelta
from typing import ClassVar

from django.db.models import Q, QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import services as audit
from audit.mixins import AuditedAPIMixin
from clinic.api import CursorPagination
from clinic.errors import PermissionDeniedError
from clinic.permissions import required_permission
from practice.models import Patient, Practitioner
from practice.selectors import row_in_scope, rows_in_scope

from .. import availability, selectors, series, services, states
from ..calendar import appointment_ics, practitioner_feed_ics
from ..models import (
    Appointment,
    AppointmentSeries,
    AppointmentType,
    CalendarFeed,
    Closure,
    TimeOff,
)
from ..models import WorkingHours as WorkingHoursModel
from . import serializers as s

BOOK = "scheduling.book_appointment"


def acting_patient(
    request: Request, patient: Patient | None, *, practitioner: Practitioner | None = None
) -> Patient:
    """Who a booking is for. Staff who book name the patient, within their grant's scope (a
    column of their own, when that is all it reaches); a patient (a self-service grant) books
    for themselves only."""
    user = request.user
    if user.has_perm(BOOK):
        if patient is None:
            raise PermissionDeniedError(
                "Name the patient.", extra={"errors": {"patient": ["Required."]}}
            )
        if not row_in_scope(user=user, permission=BOOK, practitioner=practitioner, patient=patient):
            raise PermissionDeniedError("Your role does not book in this column.")
        return patient
    own = selectors.patient_for_user(user)
    if own is None:
        raise PermissionDeniedError("Your account is not linked to a patient record.")
    if patient is not None and patient.pk != own.pk:
        raise PermissionDeniedError("Patients book only for themselves.")
    return own


def _source(request: Request) -> str:
    return Appointment.Source.API


def _may_book_with(user, practitioner) -> bool:
    """Staff book in the columns their grant reaches; a patient moves their own visit to
    any practitioner (the booking rules still apply)."""
    if not user.has_perm(BOOK):
        return True
    return row_in_scope(user=user, permission=BOOK, practitioner=practitioner)


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


def _appointments_in_scope(view, queryset: QuerySet) -> QuerySet:
    """The visits the request's permission reaches: the clinic's, a practitioner's own
    column, a patient's own visits."""
    return rows_in_scope(
        queryset,
        user=view.request.user,
        permission=required_permission(view.request, view) or "scheduling.view_appointment",
        practitioner="practitioner",
        patient="patient",
    )


class AppointmentViewSet(
    AuditedAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Appointments. Create with `POST` (an `Idempotency-Key` header makes a retry safe);
    change with the actions; never deleted (cancel instead). Each action needs the
    appointment's permission its row of the state machine names (scheduling.states); a
    patient books, moves and cancels their own visits."""

    permission_model = "scheduling.appointment"
    permission_actions: ClassVar[dict[str, str]] = {
        "create": "book",
        "check": "book",
        "ics": "view",
        **{action: row.permission for action, row in states.TRANSITIONS.items()},
    }
    # A patient's own visits: read, book, and the changes the state machine lets them make online.
    self_service_actions = (
        *("list", "retrieve", "metadata", "ics", "create", "check"),
        *(action for action, row in states.TRANSITIONS.items() if row.patient_online),
    )
    serializer_class = s.AppointmentSerializer
    filterset_class = AppointmentFilter
    pagination_class = CursorPagination
    ordering_fields = ["start", "created_at"]
    ordering = ["start", "id"]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        _activate_tz(request)

    def get_queryset(self) -> QuerySet[Appointment]:
        return _appointments_in_scope(self, selectors.appointment_list())

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
        patient = acting_patient(request, v.get("patient"), practitioner=v["practitioner"])
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
        response = Response(
            self.get_serializer(appointment).data,
            status=status.HTTP_200_OK if appointment.replayed else status.HTTP_201_CREATED,
        )
        if appointment.replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    @extend_schema(
        request=s.ConflictCheckSerializer,
        responses=s.ConflictCheckResultSerializer,
    )
    @action(detail=False, methods=["post"], url_path="check")
    def check(self, request: Request) -> Response:
        """Would this slot conflict? Answers without booking."""
        data = s.ConflictCheckSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        user = request.user
        if user.has_perm(BOOK) and not row_in_scope(
            user=user, permission=BOOK, practitioner=v["practitioner"]
        ):
            raise PermissionDeniedError("Your role does not book in this column.")
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
        appointment = self.get_object()
        practitioner = data.validated_data.get("practitioner")
        if practitioner is not None and not _may_book_with(request.user, practitioner):
            raise PermissionDeniedError("Your role does not book in this column.")
        appointment = services.appointment_reschedule(
            appointment=appointment,
            start=data.validated_data["start"],
            practitioner=practitioner,
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


class PatientAppointmentsView(AuditedAPIMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """`/patients/{id}/appointments/`: for whoever may see the patient (staff; a practitioner
    the patients they see, and then their own visits; a patient their own record). Another
    patient is a 403."""

    permission_model = "scheduling.appointment"
    self_service_actions = ("list", "metadata")
    serializer_class = s.AppointmentSerializer
    filterset_class = AppointmentFilter
    pagination_class = CursorPagination
    ordering_fields = ["start", "created_at"]
    ordering = ["start", "id"]

    def get_queryset(self) -> QuerySet[Appointment]:
        if getattr(self, "swagger_fake_view", False):
            return Appointment.objects.none()
        patient = get_object_or_404(Patient, pk=self.kwargs["patient_id"])
        if not row_in_scope(
            user=self.request.user, permission="practice.view_patient", patient=patient
        ):
            raise PermissionDeniedError("This patient's appointments are not yours to see.")
        return _appointments_in_scope(self, selectors.appointment_list(patient=patient))


class MyAppointmentsView(AuditedAPIMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """`/me/appointments/`: the signed-in user's own visits: as a patient, or the column of a
    practitioner."""

    permission_model = "scheduling.appointment"
    self_service_actions = ("list", "metadata")
    serializer_class = s.AppointmentSerializer
    filterset_class = AppointmentFilter
    pagination_class = CursorPagination
    ordering_fields = ["start", "created_at"]
    ordering = ["start", "id"]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        _activate_tz(request)

    def get_queryset(self) -> QuerySet[Appointment]:
        if getattr(self, "swagger_fake_view", False):
            return Appointment.objects.none()
        user = self.request.user
        mine = selectors.appointment_list().filter(
            Q(practitioner__user=user) | Q(patient__user=user)
        )
        return _appointments_in_scope(self, mine)


class SeriesViewSet(AuditedAPIMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Recurring bookings (RFC 5545 rules), all or nothing unless `partial`. Booking and
    cancelling a series need the appointment's `book` and `cancel`."""

    permission_model = "scheduling.appointmentseries"
    permission_actions: ClassVar[dict[str, str]] = {
        "create": BOOK,
        "cancel": "scheduling.cancel_appointment",
    }
    self_service_actions = ("retrieve", "metadata", "create", "cancel")
    serializer_class = s.SeriesSerializer

    def get_queryset(self) -> QuerySet[AppointmentSeries]:
        return rows_in_scope(
            AppointmentSeries.objects.all(),
            user=self.request.user,
            permission=(
                required_permission(self.request, self) or "scheduling.view_appointmentseries"
            ),
            practitioner="practitioner",
            patient="patient",
        )

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
            patient=acting_patient(request, v.get("patient"), practitioner=v["practitioner"]),
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
        self.audit_serve([result.series, *result.booked])
        body = {
            "series": s.SeriesSerializer(result.series).data if result.series else None,
            "booked": s.AppointmentSerializer(
                result.booked, many=True, context=self.get_serializer_context()
            ).data,
            "skipped": result.skipped,
        }
        return Response(body, status=status.HTTP_201_CREATED if result.booked else 409)

    @extend_schema(request=s.SeriesCancelSerializer, responses=s.AppointmentSerializer(many=True))
    @action(detail=True, methods=["post"], pagination_class=None, filter_backends=[])
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
        self.audit_serve(cancelled)
        return Response(
            s.AppointmentSerializer(
                cancelled, many=True, context=self.get_serializer_context()
            ).data
        )


class AppointmentTypeViewSet(viewsets.ModelViewSet):
    """What can be booked. Anyone may read; the clinic admin edits. Retire with
    `is_active=false` (no delete)."""

    permission_model = "scheduling.appointmenttype"
    public_actions = ("list", "retrieve", "metadata")
    serializer_class = s.AppointmentTypeSerializer
    filterset_fields = ["mode", "is_active", "practitioners"]
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def get_queryset(self):
        return AppointmentType.objects.prefetch_related("practitioners")


class PractitionerRowsViewSet(viewsets.ModelViewSet):
    """A practitioner's rows (hours, time off): those the request's permission reaches (a
    practitioner's grant reaches their own), written only for a practitioner it reaches."""

    def _permission(self) -> str:
        permission = required_permission(self.request, self)
        assert permission is not None  # no public actions
        return permission

    def get_queryset(self) -> QuerySet:
        return rows_in_scope(
            super().get_queryset(),
            user=self.request.user,
            permission=self._permission(),
            practitioner="practitioner",
        )

    def _check_practitioner(self, serializer) -> None:
        practitioner = serializer.validated_data.get("practitioner")
        if practitioner is not None and not row_in_scope(
            user=self.request.user,
            permission=self._permission(),
            practitioner=practitioner,
        ):
            raise PermissionDeniedError("This practitioner's schedule is not yours to change.")

    def perform_create(self, serializer) -> None:
        self._check_practitioner(serializer)
        serializer.save()

    def perform_update(self, serializer) -> None:
        self._check_practitioner(serializer)
        serializer.save()


class WorkingHoursViewSet(PractitionerRowsViewSet):
    """Working hours: the clinic admin's; the front desk reads them, a practitioner their own."""

    permission_model = "scheduling.workinghours"
    serializer_class = s.WorkingHoursSerializer
    queryset = WorkingHoursModel.objects.all()
    filterset_fields = ["practitioner", "weekday", "location"]


class TimeOffViewSet(PractitionerRowsViewSet):
    """Time off: the front desk, integrators and the clinic admin keep everyone's, a
    practitioner their own."""

    permission_model = "scheduling.timeoff"
    serializer_class = s.TimeOffSerializer
    queryset = TimeOff.objects.all()
    filterset_fields = ["practitioner"]


class ClosureViewSet(viewsets.ModelViewSet):
    """Days the clinic, or one location, is closed (holidays, closures): availability, the
    booking rules, the board, smart booking and series leave them out. Anyone may read; the
    front desk and the clinic admin keep them. `?location=`, `?end_date__gte=` (those still
    to come), `?start_date__lte=`."""

    permission_model = "scheduling.closure"
    public_actions = ("list", "retrieve", "metadata")
    serializer_class = s.ClosureSerializer
    filterset_fields: ClassVar = {
        "location": ["exact"],
        "end_date": ["gte"],
        "start_date": ["lte"],
    }
    queryset = Closure.objects.order_by("start_date", "id")


class CalendarFeedView(APIView):
    """Create (or rotate) a practitioner's secret iCalendar subscription URL: the practitioner
    their own, the clinic admin anyone's."""

    permission_model = "scheduling.calendarfeed"

    @extend_schema(request=s.CalendarFeedSerializer, responses=s.CalendarFeedResultSerializer)
    def post(self, request: Request) -> Response:
        data = s.CalendarFeedSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        practitioner = data.validated_data["practitioner"]
        if not row_in_scope(
            user=request.user,
            permission="scheduling.add_calendarfeed",
            practitioner=practitioner,
        ):
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
    for appointment in appointments:  # evaluated by the feed: initials and times
        audit.record(request, audit.READ, appointment, label="calendar feed")
    return HttpResponse(body, content_type="text/calendar; charset=utf-8")

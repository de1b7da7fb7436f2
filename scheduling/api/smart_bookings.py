"""The smart-booking endpoints (`/api/v1/smart-bookings/`): describe a need and get 202 with
the job to follow, list and read jobs, cancel one while it is queued."""

from typing import ClassVar

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from audit.mixins import AuditedAPIMixin
from clinic.permissions import required_permission
from clinic.tenancy import request_tenant
from practice.selectors import rows_in_scope
from realtime.links import websocket_url

from ..errors import InvalidTransitionError
from ..models import SmartBookingJob
from ..smart.job import estimated_completion, smart_job_cancel, smart_job_create
from . import serializers as s
from .views import BOOK, acting_patient


class SmartBookingViewSet(
    AuditedAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Describe a need; a worker finds and books the best slot. Watch the job at `status_url`
    or, live, at `websocket_url`. Asking for one (and withdrawing it while queued) needs the
    appointment's `book`; a patient asks for themselves."""

    permission_model = "scheduling.smartbookingjob"
    permission_actions: ClassVar[dict[str, str]] = {"create": BOOK, "cancel": BOOK}
    self_service_actions = ("list", "retrieve", "metadata", "create", "cancel")
    serializer_class = s.SmartBookingJobSerializer
    filterset_fields = ["status", "patient"]
    ordering = ["-created_at"]

    def get_queryset(self):
        return rows_in_scope(
            SmartBookingJob.objects.all(),
            user=self.request.user,
            permission=required_permission(self.request, self) or "scheduling.view_smartbookingjob",
            patient="patient",
        )

    @extend_schema(
        request=s.SmartBookingRequestSerializer,
        responses={202: s.SmartBookingAcceptedSerializer},
    )
    def create(self, request: Request) -> Response:
        data = s.SmartBookingRequestSerializer(
            data=request.data, context={"default_tz": request_tenant(request).timezone}
        )
        data.is_valid(raise_exception=True)
        patient = acting_patient(request, data.validated_data.get("patient"))
        job = smart_job_create(
            patient=patient, request=data.to_job_request(), requested_by=request.user
        )
        self.audit_serve([job])
        return Response(
            {
                "job_id": str(job.pk),
                "status": job.status,
                "estimated_completion": estimated_completion(),
                "status_url": request.build_absolute_uri(f"/api/v1/smart-bookings/{job.pk}/"),
                "websocket_url": websocket_url(request, f"/ws/jobs/{job.pk}/"),
            },
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(request=None, responses=s.SmartBookingJobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk=None) -> Response:
        """Cancel while queued; 409 once a worker has started."""
        job = self.get_object()
        if not smart_job_cancel(job=job):
            raise InvalidTransitionError(
                f"This job is {job.status}; only a queued job can be cancelled."
            )
        job.refresh_from_db()
        return Response(self.get_serializer(job).data)

"""The waitlist API: `/api/v1/waitlist/` (entries: staff all, a patient their own) and
`/api/v1/waitlist/offers/` (read; `accept` and `decline` one held offer)."""

from typing import ClassVar

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from audit.mixins import AuditedAPIMixin
from clinic.errors import PermissionDeniedError
from clinic.permissions import required_permission
from clinic.privacy import reads_as_staff
from practice.selectors import row_in_scope, rows_in_scope
from scheduling.selectors import patient_for_user

from .. import selectors, services
from ..models import WaitlistEntry
from . import serializers as s

ADD = "waitlist.add_waitlistentry"


def _acting_patient(request: Request, patient):
    """Whose entry this is: staff name the patient (within their grant's scope); a patient
    adds their own."""
    user = request.user
    if user.has_perm(ADD):
        if patient is None:
            raise PermissionDeniedError(
                "Name the patient.", extra={"errors": {"patient": ["Required."]}}
            )
        if not row_in_scope(user=user, permission=ADD, patient=patient):
            raise PermissionDeniedError("Your role does not reach this patient.")
        return patient
    own = patient_for_user(user)
    if own is None:
        raise PermissionDeniedError("Your account is not linked to a patient record.")
    if patient is not None and patient.pk != own.pk:
        raise PermissionDeniedError("Patients add only themselves to the waitlist.")
    return own


class WaitlistEntryViewSet(AuditedAPIMixin, viewsets.ModelViewSet):
    """Waitlist entries, earliest first (the order offers are made in). DELETE takes an entry
    off the list (it is kept, `cancelled`; a hold it has passes on)."""

    permission_model = "waitlist.waitlistentry"
    self_service_actions = (
        "list", "retrieve", "metadata", "create", "update", "partial_update", "destroy",
    )  # fmt: skip
    serializer_class = s.WaitlistEntrySerializer
    filterset_fields = ["status", "patient", "practitioner", "appointment_type"]
    ordering_fields = ["created_at", "earliest_date"]
    ordering = ["created_at", "id"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return rows_in_scope(
            selectors.entry_list(),
            user=self.request.user,
            permission=required_permission(self.request, self) or "waitlist.view_waitlistentry",
            practitioner="practitioner",
            patient="patient",
        )

    @extend_schema(
        request=s.WaitlistEntryWriteSerializer, responses={201: s.WaitlistEntrySerializer}
    )
    def create(self, request: Request) -> Response:
        data = s.WaitlistEntryWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = _staff_words_of_staff(request, dict(data.validated_data))
        patient = _acting_patient(request, values.pop("patient", None))
        entry = services.entry_create(patient=patient, created_by=request.user, **values)
        self.audit_serve([entry])
        return Response(self.get_serializer(entry).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.WaitlistEntryUpdateSerializer, responses=s.WaitlistEntrySerializer)
    def partial_update(self, request: Request, pk=None) -> Response:
        entry = self.get_object()
        data = s.WaitlistEntryUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = _staff_words_of_staff(request, dict(data.validated_data))
        entry = services.entry_update(entry=entry, **values)
        return Response(self.get_serializer(entry).data)

    def destroy(self, request: Request, pk=None) -> Response:
        services.entry_cancel(entry=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


def _staff_words_of_staff(request: Request, values: dict) -> dict:
    """`notes` are the staff's (the read hides them from a patient): a patient's are ignored."""
    if not reads_as_staff(request, WaitlistEntry):
        values.pop("notes", None)
    return values


class WaitlistOfferViewSet(
    AuditedAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Offers of freed slots, newest first: `held` until `expires_at`, then accepted,
    declined, expired or withdrawn. The patient accepts or declines their own; the front desk
    and clinic admins for a patient (the offer's `accept`)."""

    permission_model = "waitlist.waitlistoffer"
    permission_actions: ClassVar[dict[str, str]] = {"accept": "accept", "decline": "accept"}
    self_service_actions = ("list", "retrieve", "metadata", "accept", "decline")
    serializer_class = s.WaitlistOfferSerializer
    filterset_fields = ["status", "patient", "practitioner", "entry"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self):
        return rows_in_scope(
            selectors.offer_list(),
            user=self.request.user,
            permission=required_permission(self.request, self) or "waitlist.view_waitlistoffer",
            practitioner="practitioner",
            patient="patient",
        )

    @extend_schema(request=None, responses={200: s.WaitlistOfferSerializer})
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk=None) -> Response:
        """Book the held slot (409 `offer-closed` once decided or expired; the booking's own
        409 if the slot was taken after the hold ended)."""
        offer = self.get_object()
        services.offer_accept(offer=offer, by=request.user)
        offer.refresh_from_db()
        return Response(self.get_serializer(offer).data)

    @extend_schema(request=None, responses={200: s.WaitlistOfferSerializer})
    @action(detail=True, methods=["post"])
    def decline(self, request: Request, pk=None) -> Response:
        """Let the slot go to the next entry (409 `offer-closed` once decided or expired)."""
        offer = services.offer_decline(offer=self.get_object())
        return Response(self.get_serializer(offer).data)

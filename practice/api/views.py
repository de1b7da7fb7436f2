"""The practice API: thin views that parse, call a selector or a service, and render.

Every resource has list, retrieve, create, update (PUT/PATCH), `POST .../{id}/deactivate/`
and `POST .../{id}/reactivate/`. Nothing with history is deleted: DELETE answers 405.
Permissions come from the grants (practice/grants.py, checked by the API's one permission
class, clinic.permissions.GrantPermission); see the README's role table.
"""

from typing import Any, ClassVar

from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import services as audit
from audit.mixins import AuditedAPIMixin, changed_fields, changes_tracked
from clinic.api import (
    AnswerCache,
    FilterBackend,
    JSONRenderer,
    PDFRenderer,
    StableOrderingFilter,
    WindowCountPagination,
)
from clinic.errors import NotFoundError
from clinic.permissions import SIGNED_IN, required_permission

from .. import rights, selectors, services
from ..models import Coverage, Location, Patient, Payer, Practitioner, ServiceCode, Specialty
from . import serializers as s

NO_DELETE = "Nothing with history is deleted: DELETE answers 405; use `POST .../{id}/deactivate/`."


class NoPatientRecordError(NotFoundError):
    code = "no-patient-record"
    title = "No patient record"


class PracticeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """List, retrieve, create, update, deactivate and reactivate one kind of record.

    Subclasses name the model (its permissions are the grants'), the output and input
    serializers, and the services (`<entity>_create(**fields)`,
    `<entity>_update(<entity>=..., data=...)`, `<entity>_deactivate(<entity>=...)`,
    `<entity>_reactivate(<entity>=...)`). Deactivating and reactivating change a record.
    """

    http_method_names = ["get", "post", "put", "patch", "head", "options"]
    filter_backends = [FilterBackend, StableOrderingFilter]
    permission_model: str
    permission_actions: ClassVar[dict[str, str]] = {"deactivate": "change", "reactivate": "change"}
    entity: str
    input_serializer_class: type[serializers.Serializer]
    public_serializer_class: type[serializers.Serializer] | None = None

    # Helpers --------------------------------------------------------------------------------

    def can(self, action_name: str) -> bool:
        """Whether the caller holds `action_name` on the model as staff (a model permission;
        a patient's self-service grants are not one)."""
        app_label, model = self.permission_model.split(".")
        return self.request.user.has_perm(f"{app_label}.{action_name}_{model}")

    def get_serializer_class(self):
        if self.public_serializer_class is not None and not self.can("view"):
            return self.public_serializer_class
        return self.serializer_class

    def service(self, verb: str):
        return getattr(services, f"{self.entity}_{verb}")

    def parse(self, data: Any, *, instance: Any = None, partial: bool = False) -> dict:
        serializer = self.input_serializer_class(
            instance, data=data, partial=partial, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def render(self, instance: Any, *, code: int = status.HTTP_200_OK) -> Response:
        # Re-read through the view's selector: the answer has the same shape (and prefetches)
        # as a GET.
        fresh = self.get_queryset().get(pk=instance.pk)
        return Response(self.get_serializer(fresh).data, status=code)

    # Actions --------------------------------------------------------------------------------

    def create(self, request: Request, *args, **kwargs) -> Response:
        instance = self.service("create")(**self.parse(request.data))
        return self.render(instance, code=status.HTTP_201_CREATED)

    def update(self, request: Request, *args, partial: bool = False, **kwargs) -> Response:
        instance = self.get_object()
        data = self.parse(request.data, instance=instance, partial=partial)
        instance = self.service("update")(**{self.entity: instance, "data": data})
        return self.render(instance)

    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        return self.update(request, *args, partial=True, **kwargs)

    @extend_schema(request=None, description="Soft delete: the record stays, `is_active` false.")
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, *args, **kwargs) -> Response:
        instance = self.service("deactivate")(**{self.entity: self.get_object()})
        return self.render(instance)

    @extend_schema(request=None, description="Undo a deactivation.")
    @action(detail=True, methods=["post"])
    def reactivate(self, request: Request, *args, **kwargs) -> Response:
        instance = self.service("reactivate")(**{self.entity: self.get_object()})
        return self.render(instance)


def _crud_schema(name: str, input_serializer, output_serializer, *, public: bool = False):
    """OpenAPI texts for the standard actions of one resource."""
    readers = "Anyone (anonymous included; public fields only)" if public else "Staff roles"
    auth: list[dict[str, list[str]]] | None = (
        [{"jwtAuth": []}, {"cookieAuth": []}, {}] if public else None
    )
    # drf-spectacular annotates `auth` as names, but takes security requirement objects.
    return extend_schema_view(
        list=extend_schema(
            description=f"List {name}s. {readers}. Paginated, filterable.",
            auth=auth,  # type: ignore[arg-type]
        ),
        retrieve=extend_schema(
            description=f"One {name}. {readers}.",
            auth=auth,  # type: ignore[arg-type]
        ),
        create=extend_schema(
            request=input_serializer, responses={201: output_serializer}, description=NO_DELETE
        ),
        update=extend_schema(request=input_serializer, responses=output_serializer),
        partial_update=extend_schema(request=input_serializer, responses=output_serializer),
        deactivate=extend_schema(responses=output_serializer),
        reactivate=extend_schema(responses=output_serializer),
    )


# Directory: locations, specialties, practitioners --------------------------------------------


class DirectoryFilter(filters.FilterSet):
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")


class IncludeInactiveMixin(PracticeViewSet):
    """Directory lists show active rows; staff may ask for all with `include_inactive=true`
    and fetch an inactive row by id."""

    def include_inactive(self) -> bool:
        if not self.can("view"):
            return False
        if self.action != "list":
            return True
        return self.request.query_params.get("include_inactive", "").lower() in ("1", "true")


@_crud_schema("location", s.LocationInputSerializer, s.LocationSerializer, public=True)
class LocationViewSet(IncludeInactiveMixin, PracticeViewSet):
    permission_model = "practice.location"
    public_actions = ("list", "retrieve", "metadata")
    entity = "location"
    serializer_class = s.LocationSerializer
    public_serializer_class = s.LocationPublicSerializer
    input_serializer_class = s.LocationInputSerializer
    filterset_class = DirectoryFilter
    ordering_fields = ["name", "id"]

    def get_queryset(self) -> QuerySet[Location]:
        return selectors.location_list(include_inactive=self.include_inactive())


@_crud_schema("specialty", s.SpecialtyInputSerializer, s.SpecialtySerializer, public=True)
class SpecialtyViewSet(IncludeInactiveMixin, PracticeViewSet):
    permission_model = "practice.specialty"
    public_actions = ("list", "retrieve", "metadata")
    entity = "specialty"
    serializer_class = s.SpecialtySerializer
    public_serializer_class = s.SpecialtyPublicSerializer
    input_serializer_class = s.SpecialtyInputSerializer
    filterset_class = DirectoryFilter
    ordering_fields = ["name", "slug", "id"]

    def get_queryset(self) -> QuerySet[Specialty]:
        return selectors.specialty_list(include_inactive=self.include_inactive())


SEARCH_ANSWERS = AnswerCache("practitioner-search")


@_crud_schema("practitioner", s.PractitionerInputSerializer, s.PractitionerSerializer, public=True)
@extend_schema_view(
    list=extend_schema(
        parameters=[s.PractitionerSearchParamsSerializer],
        description=(
            "Search the practitioner directory. Anyone (anonymous included) may search; "
            "staff see internal fields. Order: best match for `q`, then rating (highest "
            "first), then name, then id. Paginated; the number of SQL queries does not grow "
            "with the result."
        ),
    )
)
class PractitionerViewSet(IncludeInactiveMixin, PracticeViewSet):
    permission_model = "practice.practitioner"
    public_actions = ("list", "retrieve", "metadata")
    entity = "practitioner"
    serializer_class = s.PractitionerSerializer
    public_serializer_class = s.PractitionerPublicSerializer
    input_serializer_class = s.PractitionerInputSerializer
    filter_backends = []  # the search parses its own parameters
    pagination_class = WindowCountPagination  # one SQL query per page

    def get_queryset(self) -> QuerySet[Practitioner]:
        return selectors.practitioner_queryset(include_inactive=self.include_inactive())

    def get_serializer_context(self) -> dict[str, Any]:
        context = dict(super().get_serializer_context())
        if self.action == "list":
            context["extension_fields"] = [
                name
                for extension in selectors.practitioner_search_extensions()
                for name in extension.fields
            ]
        return context

    # A shared answer is an HttpResponse of ready JSON (DRF passes it through as it is), not the
    # Response DRF's mixin declares.
    def list(self, request: Request, *args, **kwargs) -> HttpResponse:  # type: ignore[override]
        def results() -> Response:
            params = s.PractitionerSearchParamsSerializer(data=request.query_params.dict())
            params.is_valid(raise_exception=True)
            criteria = dict(params.validated_data)
            inactive = criteria.get("include_inactive", False)
            criteria["include_inactive"] = inactive and self.can("view")
            extension_params = {
                name
                for extension in selectors.practitioner_search_extensions()
                for name in extension.params
            }
            criteria["extra"] = {
                name: value
                for name, value in request.query_params.items()
                if name in extension_params
            }
            found = selectors.practitioner_search(**criteria)
            page = self.paginate_queryset(found)  # type: ignore[arg-type]  # a Windowed search
            return self.get_paginated_response(self.get_serializer(page, many=True).data)

        if self.get_serializer_class() is not self.public_serializer_class:
            return results()

        def compute() -> tuple[bytes, float]:
            # Validated on a miss only, as availability is: an answer is stored only for
            # parameters that passed, under the raw parameters.
            response = results()
            # An answer naming a next free slot holds until that moment passes, at the latest.
            moments = [row.get("next_available") for row in response.data["results"]]
            soonest = min((m for m in moments if m is not None), default=None)
            return JSONRenderer().render(response.data), (
                (soonest - timezone.now()).total_seconds() if soonest else 0
            )

        # What anyone may see is the same for everyone: shared until the directory changes.
        key = (request.scheme, request.get_host(), sorted(request.query_params.lists()))
        return SEARCH_ANSWERS.answer(key, compute)


# Patients and coverage ----------------------------------------------------------------------


class PatientFilter(filters.FilterSet):
    q = filters.CharFilter(method="filter_q", label="Name, email or phone contains")
    is_active = filters.BooleanFilter()
    date_of_birth = filters.DateFilter()
    preferred_language = filters.CharFilter()

    class Meta:
        model = Patient
        fields = ["is_active", "date_of_birth", "preferred_language", "sex"]

    def filter_q(self, queryset: QuerySet[Patient], name: str, value: str) -> QuerySet[Patient]:
        from django.db.models import Q

        for word in value.split()[:4]:
            queryset = queryset.filter(
                Q(first_name__icontains=word)
                | Q(last_name__icontains=word)
                | Q(email__icontains=word)
                | Q(phone__icontains=word)
            )
        return queryset


EXPORT_SCHEMA = extend_schema(
    parameters=[
        OpenApiParameter(
            "format",
            str,
            enum=list(rights.EXPORT_FORMATS),
            description="`json` (default): the whole copy; `pdf`: a readable summary.",
        )
    ],
    responses={
        (200, "application/json"): OpenApiResponse(
            OpenApiTypes.OBJECT,
            description=(
                f"`{rights.EXPORT_FORMAT}` version {rights.EXPORT_VERSION}: `patient`, "
                "`account`, `coverages`, `access_log`, `erasure_requests`, `authorizations` "
                "(lines and their `usage`), `appointments`, `series`, `smart_booking_jobs`; "
                "times in the clinic's zone. See the README."
            ),
        ),
        (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="Summary."),
    },
)


def export_negotiation(view, request: Request, force: bool):
    """DRF's negotiation, but an unknown `?format=` is a 400 naming the field (DRF answers
    404, as if the page were missing)."""
    try:
        return APIView.perform_content_negotiation(view, request, force)
    except Http404:
        formats = ", ".join(rights.EXPORT_FORMATS)
        raise serializers.ValidationError({"format": [f"Give one of: {formats}."]}) from None


def export_answer(request: Request, patient: Patient, *, staff: bool) -> Response:
    """A patient's data as the renderer asked (`?format=json|pdf`)."""
    document = rights.patient_export(patient=patient, staff=staff, request=request)
    fmt = request.accepted_renderer.format
    if fmt != "pdf":
        return Response(document)
    content, _media_type, filename = rights.patient_export_file(document, "pdf")
    return Response(content, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@_crud_schema("patient", s.PatientInputSerializer, s.PatientSerializer)
@extend_schema_view(
    list=extend_schema(
        description=(
            "Staff roles list every patient, a practitioner the patients they see; a patient "
            "lists only their own record."
        )
    ),
    partial_update=extend_schema(
        description=(
            "Staff change any field. A patient changes only contact details and preferences "
            "on their own record (another patient's id is a 404; identity fields a 400)."
        )
    ),
)
class PatientViewSet(AuditedAPIMixin, PracticeViewSet):
    permission_model = "practice.patient"
    permission_actions: ClassVar[dict[str, str]] = {
        **PracticeViewSet.permission_actions,
        "export": "export",
    }
    self_service_actions = ("list", "retrieve", "metadata", "update", "partial_update", "export")
    audit_own_actions = ("export",)  # an `export` event (practice.rights), not a read
    entity = "patient"
    serializer_class = s.PatientSerializer
    input_serializer_class = s.PatientInputSerializer
    filterset_class = PatientFilter
    ordering_fields = ["last_name", "first_name", "date_of_birth", "created_at", "id"]

    def get_queryset(self) -> QuerySet[Patient]:
        permission = required_permission(self.request, self) or "practice.view_patient"
        return selectors.patient_list_for(user=self.request.user, permission=permission)

    def update(self, request: Request, *args, partial: bool = False, **kwargs) -> Response:
        if self.can("change"):
            return super().update(request, *args, partial=partial, **kwargs)
        patient = self.get_object()  # a patient's queryset holds only their own record
        serializer = s.PatientSelfInputSerializer(patient, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        patient = services.patient_update(
            patient=patient, data=serializer.validated_data, by_patient=True
        )
        return self.render(patient)

    @extend_schema(
        description=(
            "Everything the clinic holds about the patient (GDPR Art. 15/20, LGPD, HIPAA "
            "access). Staff who may export (clinic admin, front desk, integrator) get every "
            "field; the patient, their own record only, without what staff wrote (notes, "
            "who booked, alert settings)."
        )
    )
    @EXPORT_SCHEMA
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, PDFRenderer])
    def export(self, request: Request, *args, **kwargs) -> Response:
        return export_answer(request, self.get_object(), staff=self.can("export"))

    def perform_content_negotiation(self, request: Request, force: bool = False):
        if self.action == "export":
            return export_negotiation(self, request, force)
        return super().perform_content_negotiation(request, force)


class CoverageFilter(filters.FilterSet):
    active_on = filters.DateFilter(method="filter_active_on", label="In effect on this date")

    class Meta:
        model = Coverage
        fields = ["payer", "priority", "is_active"]

    def filter_active_on(self, queryset, name, value):
        from django.db.models import Q

        return queryset.filter(effective_from__lte=value).filter(
            Q(effective_to__isnull=True) | Q(effective_to__gte=value)
        )


@_crud_schema("coverage", s.CoverageInputSerializer, s.CoverageSerializer)
class CoverageViewSet(AuditedAPIMixin, PracticeViewSet):
    """`/patients/{patient_pk}/coverages/`: a patient's insurance coverage."""

    permission_model = "practice.coverage"
    self_service_actions = ("list", "retrieve", "metadata")
    entity = "coverage"
    serializer_class = s.CoverageSerializer
    input_serializer_class = s.CoverageInputSerializer
    filterset_class = CoverageFilter
    ordering_fields = ["priority", "effective_from", "id"]

    def patient(self) -> Patient:
        if not hasattr(self, "_patient"):
            patients = selectors.patient_list_for(user=self.request.user)
            self._patient = get_object_or_404(patients, pk=self.kwargs["patient_pk"])
        return self._patient

    def get_queryset(self) -> QuerySet[Coverage]:
        if getattr(self, "swagger_fake_view", False):
            return Coverage.objects.none()
        return selectors.rows_in_scope(
            selectors.coverage_list(patient=self.patient()),
            user=self.request.user,
            permission="practice.view_coverage",
            patient="patient",
        )

    def create(self, request: Request, *args, **kwargs) -> Response:
        coverage = services.coverage_create(patient=self.patient(), **self.parse(request.data))
        return self.render(coverage, code=status.HTTP_201_CREATED)


# Payers and service codes -------------------------------------------------------------------


class PayerFilter(filters.FilterSet):
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")

    class Meta:
        model = Payer
        fields = ["claim_filing_code", "is_active", "edi_payer_id"]


@_crud_schema("payer", s.PayerInputSerializer, s.PayerSerializer)
class PayerViewSet(PracticeViewSet):
    permission_model = "practice.payer"
    entity = "payer"
    serializer_class = s.PayerSerializer
    input_serializer_class = s.PayerInputSerializer
    filterset_class = PayerFilter
    ordering_fields = ["name", "edi_payer_id", "id"]

    def get_queryset(self) -> QuerySet[Payer]:
        return selectors.payer_list()


class ServiceCodeFilter(filters.FilterSet):
    q = filters.CharFilter(field_name="label", lookup_expr="icontains", label="Label contains")
    timed = filters.BooleanFilter(
        field_name="unit_minutes", lookup_expr="isnull", exclude=True, label="Timed codes"
    )

    class Meta:
        model = ServiceCode
        fields = ["code", "is_active"]


@_crud_schema("service code", s.ServiceCodeInputSerializer, s.ServiceCodeSerializer)
class ServiceCodeViewSet(PracticeViewSet):
    permission_model = "practice.servicecode"
    entity = "service_code"
    serializer_class = s.ServiceCodeSerializer
    input_serializer_class = s.ServiceCodeInputSerializer
    filterset_class = ServiceCodeFilter
    ordering_fields = ["code", "label", "id"]

    def get_queryset(self) -> QuerySet[ServiceCode]:
        return selectors.service_code_list()


# The signed-in patient's own record ---------------------------------------------------------


class MyPatientView(APIView):
    """`/me/patient/`: the patient record linked to the signed-in user."""

    permission_model = SIGNED_IN

    def patient(self, request: Request) -> Patient:
        user = request.user
        assert user.is_authenticated  # permission_model SIGNED_IN
        patient = selectors.patient_get_for_user(user=user)
        if patient is None:
            raise NoPatientRecordError("No patient record is linked to this account.")
        return patient

    @extend_schema(
        responses={200: s.PatientSerializer, 404: OpenApiResponse(description="No record.")}
    )
    def get(self, request: Request) -> Response:
        patient = self.patient(request)
        audit.record(request, audit.READ, patient)
        return Response(s.PatientSerializer(patient).data)

    @extend_schema(request=s.PatientSelfInputSerializer, responses=s.PatientSerializer)
    def patch(self, request: Request) -> Response:
        patient = self.patient(request)
        before = changes_tracked(patient)
        serializer = s.PatientSelfInputSerializer(patient, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        patient = services.patient_update(
            patient=patient, data=serializer.validated_data, by_patient=True
        )
        audit.record(request, audit.UPDATE, patient, fields=changed_fields(before, patient))
        return Response(s.PatientSerializer(patient).data)


class MyDataExportView(MyPatientView):
    """`/me/export/`: the signed-in patient's own copy of their data (never staff fields)."""

    http_method_names = ["get", "head", "options"]
    renderer_classes = [JSONRenderer, PDFRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False):
        return export_negotiation(self, request, force)

    @extend_schema(description="The signed-in patient's data; see `/patients/{id}/export/`.")
    @EXPORT_SCHEMA
    def get(self, request: Request) -> Response:
        return export_answer(request, self.patient(request), staff=False)

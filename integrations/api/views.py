"""API clients (`/api/v1/api-clients/`, clinic admin) and the clinic's usage
(`/api/v1/usage/`)."""

from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from clinic.errors import ApplicationError
from clinic.tenancy import tenant_connection
from usage.selectors import usage_days

from .. import services
from ..models import ApiClient
from .serializers import (
    ApiClientSerializer,
    ApiClientWithSecretSerializer,
    RotateSecretSerializer,
    UsageDaySerializer,
    UsageQuerySerializer,
)

NO_STORE = {"Cache-Control": "no-store"}


class ApiClientViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """The clinic's API clients. Creating one answers its `client_secret`, once; exchange
    `client_id` and `client_secret` at `/api/v1/oauth/token/` for an access token."""

    permission_model = "integrations.apiclient"
    permission_actions = {"revoke": "change", "rotate_secret": "change"}
    serializer_class = ApiClientSerializer
    ordering_fields = ["created_at", "name"]
    ordering = ["-created_at", "id"]

    def get_queryset(self) -> QuerySet[ApiClient]:
        return ApiClient.objects.all()

    @extend_schema(responses={201: ApiClientWithSecretSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        client, secret = services.api_client_create(
            created_by=request.user,  # type: ignore[arg-type]  # signed in: GrantPermission
            **serializer.validated_data,
        )
        data = ApiClientWithSecretSerializer(client).data | {"client_secret": secret}
        return Response(data, status=201, headers=NO_STORE)

    def perform_update(self, serializer) -> None:
        serializer.instance = services.api_client_update(
            client=serializer.instance, **serializer.validated_data
        )

    @extend_schema(request=None, responses=ApiClientSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk=None) -> Response:
        """Revoke the client: its tokens are refused from the next request, its secrets at
        once. Cannot be undone (create another client)."""
        client = services.api_client_revoke(client=self.get_object())
        return Response(ApiClientSerializer(client).data)

    @extend_schema(request=RotateSecretSerializer, responses=ApiClientWithSecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk=None) -> Response:
        """A new `client_secret` (shown once); the current one keeps working until
        `previous_secret_valid_until`, so the integrator can deploy the new one first."""
        serializer = RotateSecretSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        until = serializer.validated_data.get(
            "previous_secret_valid_until", timezone.now() + timedelta(hours=24)
        )
        client, secret = services.api_client_rotate(
            client=self.get_object(), previous_valid_until=until
        )
        data = ApiClientWithSecretSerializer(client).data | {"client_secret": secret}
        return Response(data, headers=NO_STORE)


class UsageView(ListAPIView):
    """The clinic's usage per day (UTC): API calls by client or kind of user and endpoint
    group, smart-booking jobs, webhooks delivered, notifications sent. Counted as they happen
    and added here every minute."""

    permission_model = "integrations.apiclient"
    permission_actions = {"get": "usage"}
    serializer_class = UsageDaySerializer
    filter_backends = ()

    @extend_schema(parameters=[UsageQuerySerializer])
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = UsageQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        today = timezone.now().date()
        until = query.validated_data.get("until", today)
        since = query.validated_data.get("since", until - timedelta(days=30))
        if since > until:
            raise ApplicationError(
                "`since` is after `until`.",
                extra={"errors": {"since": ["Must be on or before `until`."]}},
            )
        return usage_days(schema_name=tenant_connection.schema_name, since=since, until=until)

"""`POST /api/v1/oauth/token/`: the OAuth 2.0 client-credentials grant (RFC 6749 §4.4).

The body is form-encoded (`grant_type=client_credentials`, optional `scope`); the client
authenticates with HTTP Basic (`client_id:client_secret`, each form-urlencoded, §2.3.1) or with
`client_id` and `client_secret` in the body, never both. The answer is an access token signed
like every API token (accounts.tokens: JWT_SIGNING_KEYS, with its `kid`), carrying the clinic's
schema (refused on any other clinic's host), the client's id and the scopes granted; no
refresh token (§4.4.3): ask again. Errors are §5.2's (`error`, `error_description`) inside the
API's problem document.
"""

import base64
import binascii
from datetime import timedelta
from urllib.parse import unquote_plus

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt.views import TokenViewBase

from accounts.auth import CLIENT_CLAIM, SCHEMA_CLAIM
from accounts.tokens import AccessToken
from clinic.api import ScopedRateThrottle
from clinic.errors import PROBLEM_CONTENT_TYPE, problem
from clinic.permissions import API_SCOPES
from clinic.tenancy import tenant_connection

from ..auth import SCOPE_CLAIM
from ..services import api_client_authenticate

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class ClientCredentialsRequestSerializer(serializers.Serializer):
    grant_type = serializers.ChoiceField(choices=["client_credentials"])
    scope = serializers.CharField(
        required=False,
        help_text="Space-separated scopes, each one of the client's; all of them when absent. "
        f"Known scopes: {', '.join(API_SCOPES)}.",
    )
    client_id = serializers.CharField(
        required=False, help_text="Instead of HTTP Basic authentication."
    )
    client_secret = serializers.CharField(
        required=False, help_text="Instead of HTTP Basic authentication."
    )


class AccessTokenResponseSerializer(serializers.Serializer):
    access_token = serializers.CharField(help_text="Send as `Authorization: Bearer <token>`.")
    token_type = serializers.ChoiceField(choices=["Bearer"])
    expires_in = serializers.IntegerField(help_text="Seconds.")
    scope = serializers.CharField(help_text="The scopes granted, space-separated.")


class OAuthError(Exception):
    def __init__(self, error: str, description: str, *, status: int = 400, field: str = ""):
        super().__init__(description)
        self.error, self.description, self.status, self.field = error, description, status, field

    def response(self) -> Response:
        body = problem(
            status=self.status,
            code=self.error,
            detail=self.description,
            errors={self.field: [self.description]} if self.field else None,
            extra={"error": self.error, "error_description": self.description},
        )
        headers = dict(NO_STORE)
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="api"'
        return Response(
            body, status=self.status, headers=headers, content_type=PROBLEM_CONTENT_TYPE
        )


def _one(data, name: str) -> str | None:
    values = data.getlist(name) if hasattr(data, "getlist") else [data.get(name)]
    values = [value for value in values if value is not None]
    if len(values) > 1:
        raise OAuthError("invalid_request", f"`{name}` is given more than once.", field=name)
    return values[0] if values else None


def _credentials(request: Request) -> tuple[str, str]:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    body_id, body_secret = _one(request.data, "client_id"), _one(request.data, "client_secret")
    if header:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            raise OAuthError("invalid_client", "Authenticate with HTTP Basic.", status=401)
        if body_id is not None or body_secret is not None:
            raise OAuthError(
                "invalid_request", "Use HTTP Basic or the body, not both.", field="client_id"
            )
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", "Malformed Basic credentials.", status=401) from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise OAuthError("invalid_client", "Malformed Basic credentials.", status=401)
        return unquote_plus(client_id), unquote_plus(secret)
    if not body_id or not body_secret:
        raise OAuthError(
            "invalid_client",
            "No client authentication: HTTP Basic, or client_id and client_secret.",
            status=401,
            field="client_id",
        )
    return body_id, body_secret


class OAuthTokenView(TokenViewBase):
    """Exchange an API client's id and secret for a short-lived access token of this clinic
    (OAuth 2.0 client credentials). Rate-limited per client address like the other token
    endpoints."""

    authentication_classes = ()
    permission_classes = ()
    parser_classes = [FormParser]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token"
    serializer_class = ClientCredentialsRequestSerializer

    @extend_schema(
        operation_id="oauth_token",
        # security requirements (drf-spectacular types the argument as names, but returns it
        # as the operation's `security` list): HTTP Basic, or none (the body's credentials)
        auth=[{"clientBasic": []}, {}],  # type: ignore[list-item]
        request={"application/x-www-form-urlencoded": ClientCredentialsRequestSerializer},
        responses={
            200: AccessTokenResponseSerializer,
            400: OpenApiResponse(
                description="`invalid_request`, `unsupported_grant_type` or `invalid_scope` "
                "(RFC 6749 §5.2, as `error` in the problem document)"
            ),
            401: OpenApiResponse(description="`invalid_client`: unknown, revoked or wrong secret"),
            429: OpenApiResponse(description="Too many token requests from this address"),
        },
        examples=[
            OpenApiExample(
                "token",
                response_only=True,
                status_codes=["200"],
                value={
                    "access_token": "eyJ...",
                    "token_type": "Bearer",
                    "expires_in": 900,
                    "scope": "scheduling:read scheduling:write",
                },
            )
        ],
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        try:
            return self._grant(request)
        except OAuthError as error:
            return error.response()

    def _grant(self, request: Request) -> Response:
        grant_type = _one(request.data, "grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "`grant_type` is required.", field="grant_type")
        if grant_type != "client_credentials":
            raise OAuthError(
                "unsupported_grant_type",
                "Only `client_credentials` is supported here.",
                field="grant_type",
            )
        client_id, secret = _credentials(request)
        client = api_client_authenticate(client_id=client_id, secret=secret)
        if client is None:
            raise OAuthError("invalid_client", "Unknown client or wrong secret.", status=401)
        asked = _one(request.data, "scope")
        scopes = sorted(set(asked.split())) if asked and asked.strip() else sorted(client.scopes)
        refused = [scope for scope in scopes if scope not in client.scopes]
        if refused:
            raise OAuthError(
                "invalid_scope",
                f"Not a scope of this client: {', '.join(refused)}.",
                field="scope",
            )
        lifetime = settings.API_CLIENT_TOKEN_SECONDS
        token = AccessToken()
        token.set_exp(lifetime=timedelta(seconds=lifetime))
        token[SCHEMA_CLAIM] = tenant_connection.schema_name
        token[CLIENT_CLAIM] = client.client_id
        token[SCOPE_CLAIM] = " ".join(scopes)
        body = {
            "access_token": str(token),
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": " ".join(scopes),
        }
        return Response(AccessTokenResponseSerializer(body).data, headers=NO_STORE)

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt import views as jwt_views

from clinic.api import ScopedRateThrottle
from clinic.permissions import SIGNED_IN
from clinic.tenancy import request_tenant

from .. import lockout
from ..services import user_sign_out_everywhere


class TokenObtainView(jwt_views.TokenObtainPairView):
    """Exchange this clinic's email and password for an access and a refresh token.

    Tokens are valid on this clinic's host only. Rate-limited per client address, and locked
    after repeated failures of the account or of the address (accounts.lockout): 429 with
    `Retry-After`, before any password is checked."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token"

    def post(self, request: Request, *args, **kwargs) -> Response:
        try:
            response = super().post(request, *args, **kwargs)
        except exceptions.AuthenticationFailed:
            # axes marks the request it refused, or whose failure reached a limit
            if getattr(request, "axes_locked_out", False):
                wait = lockout.lockout_wait(request, self._credentials(request))
                raise exceptions.Throttled(wait=wait, detail=lockout.LOCKED_DETAIL) from None
            raise
        lockout.account_signed_in(request, self._credentials(request))
        return response

    @staticmethod
    def _credentials(request: Request) -> dict:
        # a body that got as far as a password check is an object (the serializer's fields)
        return request.data if isinstance(request.data, dict) else {}


class TokenRefreshView(jwt_views.TokenRefreshView):
    """Exchange a refresh token for a new access token and a new refresh token (rotation;
    the old refresh token is blacklisted). Rate-limited per client address."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token"


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    full_name = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    clinic = serializers.CharField()


class MeView(APIView):
    """Who the caller is: any signed-in user of this clinic, about their own account."""

    permission_model = SIGNED_IN

    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        user = request.user
        assert user.is_authenticated  # permission_model SIGNED_IN
        data = {
            "id": user.pk,
            "email": user.email,
            "full_name": user.full_name,
            "roles": sorted(user.roles),
            "clinic": request_tenant(request).slug,
        }
        return Response(MeSerializer(data).data)


class SignOutEverywhereView(APIView):
    """Sign the caller out everywhere: every access and refresh token they hold (this one
    included, and those a refresh would rotate into) and every browser session of theirs stop
    working on their next request (401 `token-revoked`). Sign in again for new tokens."""

    permission_model = SIGNED_IN

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        user = request.user
        assert user.is_authenticated  # permission_model SIGNED_IN
        user_sign_out_everywhere(user=user)
        return Response(status=204)

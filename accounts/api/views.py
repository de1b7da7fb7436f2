from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt import views as jwt_views

from clinic.api import ScopedRateThrottle
from clinic.permissions import SIGNED_IN
from clinic.tenancy import request_tenant


class TokenObtainView(jwt_views.TokenObtainPairView):
    """Exchange this clinic's email and password for an access and a refresh token.

    Tokens are valid on this clinic's host only."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token"


class TokenRefreshView(jwt_views.TokenRefreshView):
    """Exchange a refresh token for a new access token and a new refresh token (rotation;
    the old refresh token is blacklisted)."""

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

"""JWTs tied to one clinic.

simplejwt tokens carry only a user id, so clinic A's token would authenticate on clinic B as
B's user with the same id. Every token here carries the clinic's schema, and both the
authentication class and the refresh endpoint refuse a token minted for another clinic.
"""

from django.db import connection
from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.serializers import (
    TokenObtainPairSerializer,
    TokenRefreshSerializer,
)
from rest_framework_simplejwt.tokens import RefreshToken, Token

SCHEMA_CLAIM = "clinic"


class WrongClinicError(exceptions.AuthenticationFailed):
    default_detail = "This token was issued by another clinic."
    default_code = "token-wrong-clinic"


def token_check_clinic(token: Token) -> None:
    if token.get(SCHEMA_CLAIM) != connection.schema_name:
        raise WrongClinicError()


class ClinicTokenObtainPairSerializer(TokenObtainPairSerializer):
    @classmethod
    def get_token(cls, user) -> RefreshToken:
        token = super().get_token(user)
        token[SCHEMA_CLAIM] = connection.schema_name
        token["roles"] = sorted(user.roles)
        return token


class ClinicTokenRefreshSerializer(TokenRefreshSerializer):
    def validate(self, attrs):
        token_check_clinic(RefreshToken(attrs["refresh"], verify=False))
        return super().validate(attrs)


class ClinicJWTAuthentication(JWTAuthentication):
    def get_validated_token(self, raw_token: bytes) -> Token:
        token = super().get_validated_token(raw_token)
        token_check_clinic(token)
        return token

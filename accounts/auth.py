"""JWTs tied to one clinic.

simplejwt tokens carry only a user id, so clinic A's token would authenticate on clinic B as
B's user with the same id. Every token here carries the clinic's schema, and both the
authentication class and the refresh endpoint refuse a token minted for another clinic.
"""

import functools

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import Field
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.serializers import (
    TokenObtainPairSerializer,
    TokenRefreshSerializer,
)
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken, Token
from rest_framework_simplejwt.utils import get_md5_hash_password

from clinic.tenancy import tenant_connection

SCHEMA_CLAIM = "clinic"


class WrongClinicError(exceptions.AuthenticationFailed):
    default_detail = "This token was issued by another clinic."
    default_code = "token-wrong-clinic"


def token_check_clinic(token: Token) -> None:
    if token.get(SCHEMA_CLAIM) != tenant_connection.schema_name:
        raise WrongClinicError()


class ClinicTokenObtainPairSerializer(TokenObtainPairSerializer):
    @classmethod
    def get_token(cls, user) -> RefreshToken:
        token = super().get_token(user)
        assert isinstance(token, RefreshToken)  # our token_class, simplejwt's types say Token
        token[SCHEMA_CLAIM] = tenant_connection.schema_name
        token["roles"] = sorted(user.roles)
        return token


class ClinicTokenRefreshSerializer(TokenRefreshSerializer):
    def validate(self, attrs):
        token_check_clinic(RefreshToken(attrs["refresh"], verify=False))
        return super().validate(attrs)


@functools.cache
def _user_query() -> tuple[str, list[str]]:
    user = get_user_model()
    groups = user.groups.through._meta
    fields = user._meta.concrete_fields
    id_field = user._meta.get_field(api_settings.USER_ID_FIELD)
    assert isinstance(id_field, Field), id_field  # a column of the user table, not a relation
    sql = (
        f"SELECT {', '.join(f'u.{f.column}' for f in fields)}, "
        f"ARRAY(SELECT g.name FROM {groups.db_table} ug JOIN {Group._meta.db_table} g "
        f"ON g.id = ug.group_id WHERE ug.user_id = u.id) "
        f"FROM {user._meta.db_table} u WHERE u.{id_field.column} = %s"
    )
    return sql, [f.attname for f in fields]


def user_with_roles(user_id):
    """The token's user, with the names of their groups (roles) in `user.roles`, in one query
    of raw SQL: every API request runs it, and the ORM spent more CPU building it (a join and
    an aggregate) than PostgreSQL spent answering it. None if there is no such user."""
    sql, attnames = _user_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id])
        row = cursor.fetchone()
    if row is None:
        return None
    user = get_user_model().from_db(connection.alias, attnames, row[:-1])
    user.__dict__["roles"] = frozenset(row[-1])  # User.roles is a cached property
    return user


class ClinicJWTAuthentication(JWTAuthentication):
    def get_validated_token(self, raw_token: bytes) -> Token:
        token = super().get_validated_token(raw_token)
        token_check_clinic(token)
        return token

    def get_user(self, validated_token: Token):
        """simplejwt's lookup and checks, with the user's role names read in the same query
        (every API request asks for them: permissions are by role) instead of a second one."""
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as error:
            raise InvalidToken(_("Token contained no recognizable user identification")) from error
        user = user_with_roles(user_id)
        if user is None:
            raise AuthenticationFailed(_("User not found"), code="user_not_found")
        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed(_("User is inactive"), code="user_inactive")
        if api_settings.CHECK_REVOKE_TOKEN and validated_token.get(
            api_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            raise AuthenticationFailed(
                _("The user's password has been changed."), code="password_changed"
            )
        return user

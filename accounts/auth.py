"""JWTs tied to one clinic and to the user's token version.

simplejwt tokens carry only a user id, so clinic A's token would authenticate on clinic B as
B's user with the same id. Every token here carries the clinic's schema, and both the
authentication class and the refresh endpoint refuse a token minted for another clinic.

Every token also carries the user's token version (`User.token_version`), compared with the
user's row on each request (read in the same query as the user) and on refresh: a new
password, a deactivation, a change of roles or "sign out everywhere" raises the version and so
revokes every access and refresh token of the user at once, rotated successors included (a
refreshed token keeps its version), without a blacklist lookup per request.
"""

import functools
import time
from collections.abc import Callable
from datetime import timedelta

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import Field
from django.utils.translation import gettext as _
from rest_framework import exceptions, serializers
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.serializers import (
    TokenObtainPairSerializer,
    TokenObtainSerializer,
    TokenRefreshSerializer,
)
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import get_md5_hash_password

from accounts.tokens import RefreshToken
from clinic.tenancy import tenant_connection

from .two_factor import token_otp_check

SCHEMA_CLAIM = "clinic"
VERSION_CLAIM = "token_version"
# An API client's access token (integrations: the OAuth client-credentials grant) names the
# client instead of a user; the app that owns the clients installs who stands behind it.
CLIENT_CLAIM = "client_id"
_client_principal: Callable[[Token], object] | None = None


def client_principal_install(principal: Callable[[Token], object]) -> None:
    """Install how a client token's principal is found (`integrations` does, when Django
    starts): a user carrying `api_client_id` and `api_scopes`, or AuthenticationFailed."""
    global _client_principal
    _client_principal = principal


class WrongClinicError(exceptions.AuthenticationFailed):
    default_detail = "This token was issued by another clinic."
    default_code = "token-wrong-clinic"


class TokenRevokedError(exceptions.AuthenticationFailed):
    default_detail = (
        "This token was revoked (new password, account closed, roles changed or signed out "
        "everywhere). Sign in again."
    )
    default_code = "token-revoked"


def token_check_clinic(token: Token) -> None:
    if token.get(SCHEMA_CLAIM) != tenant_connection.schema_name:
        raise WrongClinicError()


def token_check_version(token: Token, version: int) -> None:
    """Refuse a token issued before the user's current version (or carrying none)."""
    claim = token.get(VERSION_CLAIM)
    if type(claim) is not int or claim != version:
        raise TokenRevokedError()


class ClinicTokenObtainPairSerializer(TokenObtainPairSerializer):
    token_class = RefreshToken  # signed with JWT_SIGNING_KEYS, with its kid
    otp = serializers.CharField(
        required=False,
        write_only=True,
        max_length=16,
        help_text="Staff of a clinic that requires two-factor sign-in: the current code of "
        "their authenticator app. Patients never send it.",
    )

    def validate(self, attrs):
        """simplejwt's pair, minted only once the password (TokenObtainSerializer) and, for
        staff who must use two-factor, the `otp` code are right."""
        data = TokenObtainSerializer.validate(self, attrs)  # the password: sets self.user
        token_otp_check(self.user, attrs.get("otp"))
        refresh = self.get_token(self.user)
        return {**data, "refresh": str(refresh), "access": str(refresh.access_token)}

    @classmethod
    def get_token(cls, user) -> RefreshToken:
        token = super().get_token(user)
        assert isinstance(token, RefreshToken)  # our token_class, simplejwt's types say Token
        token[SCHEMA_CLAIM] = tenant_connection.schema_name
        token[VERSION_CLAIM] = user.token_version
        token["roles"] = sorted(user.roles)
        return token


class ClinicTokenRefreshSerializer(TokenRefreshSerializer):
    token_class = RefreshToken

    def validate(self, attrs):
        token_check_clinic(RefreshToken(attrs["refresh"], verify=False))
        refresh = RefreshToken(attrs["refresh"])  # signature, expiry and blacklist
        version = (
            get_user_model()
            .objects.filter(**{api_settings.USER_ID_FIELD: refresh.get(api_settings.USER_ID_CLAIM)})
            .values_list("token_version", flat=True)
            .first()
        )
        if version is None:
            raise AuthenticationFailed(_("User not found"), code="user_not_found")
        # The new pair copies the old token's claims: it carries this same, current version.
        token_check_version(refresh, version)
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


# Access tokens this process has verified: raw token -> (token, its key id, that key's secret).
# A client sends one access token for its whole lifetime; checking its signature and decoding
# it again on every request was work with no new answer. A token found here is used again
# while it has not expired (checked on every request, with simplejwt's leeway) and while the
# key that signed it is still listed (a key retired by rotation stops its tokens at once). The
# clinic, the user's row, their token version and their state are still checked on every
# request (token_check_clinic, get_user): revocation is immediate as before. Bounded: cleared
# whole when full.
_VERIFIED: dict[bytes, tuple[Token, str, str]] = {}
VERIFIED_TOKENS_MAX = 4096


def _verified(raw_token: bytes) -> Token | None:
    """The token verified earlier by this process, if it is still valid without a new check."""
    found = _VERIFIED.get(raw_token)
    if found is None:
        return None
    token, kid, secret = found
    leeway = api_settings.LEEWAY
    leeway_s = leeway.total_seconds() if isinstance(leeway, timedelta) else float(leeway)
    exp = token.payload.get("exp")
    if (
        not isinstance(exp, int | float)
        or exp <= time.time() - leeway_s
        or dict(settings.JWT_SIGNING_KEYS).get(kid) != secret
    ):
        _VERIFIED.pop(raw_token, None)
        return None
    return token


class ClinicJWTAuthentication(JWTAuthentication):
    def get_validated_token(self, raw_token: bytes) -> Token:
        token = _verified(raw_token)
        if token is None:
            token = super().get_validated_token(raw_token)  # signature, expiry, type
            kid = jwt.get_unverified_header(raw_token).get("kid")
            secret = dict(settings.JWT_SIGNING_KEYS).get(kid)
            if isinstance(kid, str) and isinstance(secret, str):
                if len(_VERIFIED) >= VERIFIED_TOKENS_MAX:
                    _VERIFIED.clear()
                _VERIFIED[raw_token] = (token, kid, secret)
        token_check_clinic(token)
        return token

    def get_user(self, validated_token: Token):
        """simplejwt's lookup and checks, with the user's role names read in the same query
        (every API request asks for them: permissions are by role) instead of a second one,
        and the token's version compared with the row's (no query of its own). An API
        client's token is answered by the installed client principal (its row read on every
        request, so a revoked client is refused at once)."""
        if CLIENT_CLAIM in validated_token:
            if _client_principal is None:
                raise InvalidToken(_("Token contained no recognizable user identification"))
            return _client_principal(validated_token)
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as error:
            raise InvalidToken(_("Token contained no recognizable user identification")) from error
        user = user_with_roles(user_id)
        if user is None:
            raise AuthenticationFailed(_("User not found"), code="user_not_found")
        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed(_("User is inactive"), code="user_inactive")
        token_check_version(validated_token, user.token_version)
        if api_settings.CHECK_REVOKE_TOKEN and validated_token.get(
            api_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            raise AuthenticationFailed(
                _("The user's password has been changed."), code="password_changed"
            )
        return user

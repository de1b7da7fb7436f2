"""API tokens signed with JWT_SIGNING_KEYS, each with its key id, so the key can rotate.

simplejwt signs every token with one key (by default SECRET_KEY, which also signs sessions and
was once a development value written in the repository). Here a token is signed with the newest
of JWT_SIGNING_KEYS (clinic/keys.py) and names it in its `kid` header, and is verified with the
key its `kid` names: after a rotation (a new key first, the previous one kept for one refresh
token's lifetime) tokens already out keep working, and nobody is signed out. A token with no
`kid`, a `kid` no longer listed, or a signature by any other key is invalid (401).

simplejwt's token classes ask `get_token_backend()` for their backend (its extension point since
5.x; the TOKEN_BACKEND_CLASS setting is gone), so these subclasses are the whole change: the API
(AUTH_TOKEN_CLASSES), the token endpoints (accounts.auth's serializers) and the websockets use
them.
"""

from typing import Any

import jwt
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework_simplejwt import tokens
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenBackendError
from rest_framework_simplejwt.settings import api_settings


class KeyIdTokenBackend(TokenBackend):
    """simplejwt's backend (algorithm, audience, issuer, leeway and its error mapping), with the
    key chosen by `kid`. The keys are read from settings on each use, so a test's
    override_settings reaches them."""

    def __init__(self) -> None:
        super().__init__(
            api_settings.ALGORITHM,
            audience=api_settings.AUDIENCE,
            issuer=api_settings.ISSUER,
            leeway=api_settings.LEEWAY,
            json_encoder=api_settings.JSON_ENCODER,
        )

    def encode(self, payload: dict[str, Any]) -> str:
        kid, secret = settings.JWT_SIGNING_KEYS[0]
        claims = payload.copy()
        if self.audience is not None:
            claims["aud"] = self.audience
        if self.issuer is not None:
            claims["iss"] = self.issuer
        return jwt.encode(
            claims,
            secret,
            algorithm=self.algorithm,
            headers={"kid": kid},
            json_encoder=self.json_encoder,
        )

    def get_verifying_key(self, token: Any) -> Any:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as error:
            raise TokenBackendError(_("Token is invalid")) from error
        secret = dict(settings.JWT_SIGNING_KEYS).get(kid) if isinstance(kid, str) else None
        if secret is None:
            raise TokenBackendError(_("Token is invalid"))
        return secret


token_backend = KeyIdTokenBackend()


class AccessToken(tokens.AccessToken):
    def get_token_backend(self) -> TokenBackend:
        return token_backend


class RefreshToken(tokens.RefreshToken):
    access_token_class = AccessToken

    def get_token_backend(self) -> TokenBackend:
        return token_backend

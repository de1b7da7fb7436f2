"""Secrets the application must read back in clear (a webhook's signing key) are stored
encrypted: `EncryptedTextField` keeps Fernet tokens (AES-128-CBC + HMAC-SHA256, the
`cryptography` package) in the column, so a copy of the database, a backup or a `SELECT` shows
no usable secret.

The Fernet keys are derived (HKDF-SHA256, a purpose label of their own) from SECRET_KEY and
SECRET_KEY_FALLBACKS: values are written with SECRET_KEY's key and read with any of them, so a
rotated SECRET_KEY keeps old rows readable while the old one stays in SECRET_KEY_FALLBACKS, and
`manage.py secrets_reencrypt` rewrites them under the new one before it is dropped.
"""

import base64
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PURPOSE = b"clinic.crypto.EncryptedTextField v1"


def _fernet_key(secret: str) -> bytes:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE).derive(
        secret.encode()
    )
    return base64.urlsafe_b64encode(derived)


@cache
def _fernet(secret_key: str, fallbacks: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(_fernet_key(key)) for key in (secret_key, *fallbacks)])


def fernet() -> MultiFernet:
    """The current keys (cached per SECRET_KEY and fallbacks, so a test's override works)."""
    return _fernet(settings.SECRET_KEY, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ())))


def encrypt(text: str) -> str:
    return fernet().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise ImproperlyConfigured(
            "An encrypted value cannot be read with SECRET_KEY or SECRET_KEY_FALLBACKS: was "
            "SECRET_KEY rotated without keeping the old one in SECRET_KEY_FALLBACKS?"
        ) from error


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token, read back in clear. Not searchable or orderable by value:
    for secrets only."""

    def from_db_value(self, value, expression, connection):
        return value if value is None else decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return value if value in (None, "") else encrypt(value)

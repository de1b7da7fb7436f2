"""The process's secrets, checked before anything uses them.

Anything in this repository is public, so the development keys below may only ever sign
something when DEBUG is on. With DEBUG=0 the environment must give SECRET_KEY (sessions,
password-reset links, CSRF) and JWT_SIGNING_KEYS (API tokens, a key of their own so a leaked or
rotated one does not touch the other), and the process refuses to start otherwise: a forgotten
variable must not quietly sign with a published key. `make run` and scripts/with-services
generate random ones once into `.run/secrets.env` (scripts/keys.py); test runs generate their
own (tests/testenv.py).

JWT_SIGNING_KEYS is `kid:secret` pairs separated by commas, newest first: tokens are signed with
the first and carry its `kid`; a token is verified with the key its `kid` names
(accounts.tokens), so after a rotation the previous key keeps working until it is removed.
"""

from django.core.exceptions import ImproperlyConfigured

DEV_SECRET_KEY = "dev-insecure-0b6f1c0e7d0a4c7f9a1e-change-me-in-production"
DEV_JWT_SIGNING_KEYS = "dev:dev-insecure-jwt-5d2e8a61c94b4f0e-change-me-in-production"
# HS256 wants a key at least as long as its hash (RFC 7518 §3.2): 256 bits.
JWT_SECRET_MIN_LENGTH = 32

_HOW = (
    "set it in the environment (`make run` and scripts/with-services generate random keys once "
    "into .run/secrets.env; scripts/keys.py prints them), or DEBUG=1 for the development keys"
)


def signing_keys_parse(text: str) -> tuple[tuple[str, str], ...]:
    """`kid:secret,kid:secret` (newest first) as ((kid, secret), ...); refuses a malformed list."""
    pairs: list[tuple[str, str]] = []
    for item in text.split(","):
        kid, _, secret = item.strip().partition(":")
        if not kid or not secret:
            raise ImproperlyConfigured(
                "JWT_SIGNING_KEYS must be `kid:secret` pairs separated by commas, newest first"
            )
        if len(secret) < JWT_SECRET_MIN_LENGTH:
            raise ImproperlyConfigured(
                f"JWT_SIGNING_KEYS: the secret of key {kid!r} is shorter than "
                f"{JWT_SECRET_MIN_LENGTH} characters"
            )
        if kid in dict(pairs):
            raise ImproperlyConfigured(f"JWT_SIGNING_KEYS names the key {kid!r} twice")
        pairs.append((kid, secret))
    return tuple(pairs)


def keys_for(*, debug: bool, secret_key: str, jwt_signing_keys: str) -> tuple[str, tuple]:
    """SECRET_KEY and the JWT keys this process may use: the environment's, or the development
    ones with DEBUG on. Raises ImproperlyConfigured (the process does not start) when DEBUG is
    off and one is missing or is a key written in this repository."""
    if debug:
        secret_key = secret_key or DEV_SECRET_KEY
        jwt_signing_keys = jwt_signing_keys or DEV_JWT_SIGNING_KEYS
    if not secret_key:
        raise ImproperlyConfigured(f"DEBUG=0 and SECRET_KEY is not set: {_HOW}")
    if not jwt_signing_keys:
        raise ImproperlyConfigured(f"DEBUG=0 and JWT_SIGNING_KEYS is not set: {_HOW}")
    jwt_keys = signing_keys_parse(jwt_signing_keys)
    if debug:
        return secret_key, jwt_keys
    published = {DEV_SECRET_KEY, *dict(signing_keys_parse(DEV_JWT_SIGNING_KEYS)).values()}
    if secret_key in published:
        raise ImproperlyConfigured(
            f"DEBUG=0 and SECRET_KEY is the development key written in the repository: {_HOW}"
        )
    for kid, secret in jwt_keys:
        if secret in published:
            raise ImproperlyConfigured(
                f"DEBUG=0 and JWT_SIGNING_KEYS key {kid!r} is a development key written in the "
                f"repository: {_HOW}"
            )
        if secret == secret_key:
            raise ImproperlyConfigured(
                f"JWT_SIGNING_KEYS key {kid!r} is SECRET_KEY: the JWT keys must be their own"
            )
    return secret_key, jwt_keys

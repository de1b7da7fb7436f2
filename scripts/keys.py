#!/usr/bin/env python3
"""Random keys for `make run` and scripts/with-services, generated once into `.run/secrets.env`.

With DEBUG=0 the app refuses to start without SECRET_KEY and JWT_SIGNING_KEYS from the
environment (clinic/keys.py). A local run needs keys nobody else has, and the same ones on
every start (sessions and tokens survive a restart), so they are generated on first use and
kept, readable by their owner only, next to the private database under `.run/`.

Usage:
    python scripts/keys.py          # print SECRET_KEY=... and JWT_SIGNING_KEYS=... (generated once)
    python scripts/keys.py rotate   # a new JWT key first, the previous one kept (tokens it
                                    # signed keep working); older ones are dropped

A deployment does the same with its own secret store: prepend a new `kid:secret` to
JWT_SIGNING_KEYS and remove the previous one after REFRESH_TOKEN_LIFETIME (7 days).
"""

from __future__ import annotations

import os
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path

SECRETS = Path(__file__).resolve().parent.parent / ".run" / "secrets.env"


def new_jwt_key() -> str:
    """`kid:secret`: the kid says when the key was made (and a random part keeps kids apart)."""
    return f"{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(3)}:{secrets.token_urlsafe(48)}"


def read() -> dict[str, str]:
    if not SECRETS.is_file():
        return {}
    lines = SECRETS.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def write(values: dict[str, str]) -> None:
    SECRETS.parent.mkdir(parents=True, exist_ok=True)
    temporary = SECRETS.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("".join(f"{key}={value}\n" for key, value in values.items()))
    os.replace(temporary, SECRETS)


def main(argv: list[str]) -> int:
    values = read()
    if argv[1:] == ["rotate"]:
        current = values.get("JWT_SIGNING_KEYS", "").split(",")[0]
        values["JWT_SIGNING_KEYS"] = ",".join(filter(None, [new_jwt_key(), current]))
    elif argv[1:]:
        print(__doc__, file=sys.stderr)
        return 2
    missing = not values.get("SECRET_KEY") or not values.get("JWT_SIGNING_KEYS")
    values.setdefault("SECRET_KEY", secrets.token_urlsafe(48))
    values.setdefault("JWT_SIGNING_KEYS", new_jwt_key())
    if missing or argv[1:]:
        write(values)
    for key in ("SECRET_KEY", "JWT_SIGNING_KEYS"):
        print(f"{key}={values[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

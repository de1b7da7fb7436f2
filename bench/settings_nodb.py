"""The no-database ceiling: the production settings without the tenant middleware, serving only
the ceiling view (bench/urls_nodb.py). Same server, same middleware otherwise, so the gap
between the two ceilings is what the clinic lookup and schema switch cost."""

from clinic.settings import *  # noqa: F403
from clinic.settings import MIDDLEWARE

MIDDLEWARE = [m for m in MIDDLEWARE if m != "tenants.middleware.ClinicMiddleware"]
ROOT_URLCONF = "bench.urls_nodb"

"""Settings for every environment, read from the environment (django-environ).

Production sets DEBUG=0, SECRET_KEY, JWT_SIGNING_KEYS, DATABASE_URL, REDIS_URL and
CLINIC_BASE_DOMAIN; development and tests fall back to safe local defaults, except for the keys:
with DEBUG=0 the process refuses to start without its own (clinic/keys.py).
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from clinic.keys import keys_for

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# With DEBUG=0 both come from the environment or the process does not start (clinic/keys.py).
SECRET_KEY, JWT_SIGNING_KEYS = keys_for(
    debug=DEBUG,
    secret_key=env("SECRET_KEY", default=""),
    jwt_signing_keys=env("JWT_SIGNING_KEYS", default=""),
)
# Previous SECRET_KEYs, still accepted for sessions and links and still able to read the secrets
# encrypted under them (clinic/crypto.py) until `manage.py secrets_reencrypt` has run.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

CLINIC_BASE_DOMAIN = env("CLINIC_BASE_DOMAIN", default="localhost")
# Public URL pieces for absolute links (websocket_url etc.): the websocket server may live on
# another port locally; behind a proxy both are the same origin.
CLINIC_HTTP_PORT = env.int("CLINIC_HTTP_PORT", default=8000)
CLINIC_WS_PORT = env.int("CLINIC_WS_PORT", default=8001)
# The migrated schema new clinics are cloned from. On Citus (schema-based sharding) it is created
# with `citus.enable_schema_based_sharding` off (tenants.services.template_sync), so it stays a
# local schema on the coordinator: Citus refuses some migrations in distributed schemas (`ALTER
# COLUMN ... TYPE` on identity/serial columns; tests/test_citus_ready.py fails on a tenant app's
# migration that does it). Each clinic cloned from it is the distributed schema.
CLINIC_TEMPLATE_SCHEMA = "clinic_template"
# Checks a new clinic's schema must pass before its domain is added (tenants.services,
# `check(schema) -> list[str]` problems; a failing clinic is removed again). The default: the
# template's tables are all there and, on Citus, every table is placed on a worker.
CLINIC_PROVISION_CHECKS = env.list(
    "CLINIC_PROVISION_CHECKS", default=["tenants.clone.tables_placed"]
)
# Copies of the template kept ready (tenants.services, "The warm pool"): a new clinic takes one
# (a rename) instead of waiting for a clone; a worker clones the next one. 0: no pool.
CLINIC_SCHEMA_POOL_SIZE = env.int("CLINIC_SCHEMA_POOL_SIZE", default=0)
# Seconds a host -> clinic lookup is cached per process (0 turns the cache off).
CLINIC_DOMAIN_CACHE_SECONDS = env.float("CLINIC_DOMAIN_CACHE_SECONDS", default=5.0)

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[CLINIC_BASE_DOMAIN, f".{CLINIC_BASE_DOMAIN}", "testserver"]
)
# None by default: Django's CSRF check then trusts only a POST whose Origin is the request's own
# scheme and host (`request.get_host()`), so each clinic's forms are accepted from its own pages
# only, never from a sibling clinic's host (a wildcard `*.<base domain>` here would trust them
# all). Extra origins listed here are trusted by every clinic.
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

SHARED_APPS = [
    "tenants",  # before django_tenants: its migrate_schemas also migrates the template schema
    "django_tenants",
    "accounts",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "csp",  # django-csp: its system checks of CONTENT_SECURITY_POLICY
    # Its tables also exist in public: deleting a platform operator cascades to them.
    "rest_framework_simplejwt.token_blacklist",
    "axes",  # sign-in failures and lockouts of platform operators (and of each clinic, below)
    "realtime",
    "usage",  # usage metering: counted in Redis, rolled up into public rows (usage/)
    "demo",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "accounts",
    "rest_framework_simplejwt.token_blacklist",
    "axes",  # each clinic's sign-in failures and lockouts, unlocked by its own admin
    # Staff two-factor (accounts/two_factor.py): devices live in each clinic's schema.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "practice",
    "authorizations",
    "scheduling",
    "notifications",  # confirmations, change notices, reminders, signed links (row first)
    "waitlist",  # waitlist entries and the offers (holds) of freed slots
    "billing",  # fees, episodes, charges, claims (837P), remittances (835), the money ledger
    "webhooks",  # signed webhooks: subscriptions, events and deliveries (row first)
    "audit",  # the PHI audit trail: every clinic's events in its own schema
    "integrations",  # API clients (OAuth client credentials), their rate limits
    "portal",  # patient pages: no models, templates under templates/portal/
    "backoffice",  # admin pages combining the apps above; the admin's look
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Clinic"
TENANT_DOMAIN_MODEL = "tenants.Domain"
TENANT_BASE_SCHEMA = CLINIC_TEMPLATE_SCHEMA
TENANT_CREATION_FAKES_MIGRATIONS = True
# Only issue SET search_path when the schema changes, not on every cursor.
TENANT_LIMIT_SET_CALLS = True
PUBLIC_SCHEMA_URLCONF = "clinic.urls_public"
ROOT_URLCONF = "clinic.urls_tenants"

MIDDLEWARE = [
    # Outermost: a read that met a broken database connection is served once more.
    "clinic.middleware.DatabaseRetryMiddleware",
    "clinic.middleware.ReleaseRequestMiddleware",
    # First (after the release): every answer carries the policy, the tenant middleware's error
    # pages too, and templates can read `request.csp_nonce`.
    "realtime.links.ContentSecurityPolicyMiddleware",
    "audit.middleware.AuditMiddleware",
    # Inside the audit middleware (which gives the request its id): one JSON line per request.
    "clinic.requestlog.RequestLogMiddleware",
    # Requests, latency and queries by route and status class, in-process (clinic.metrics).
    "clinic.metrics.MetricsMiddleware",
    "tenants.middleware.ClinicMiddleware",
    "clinic.middleware.TimezoneResetMiddleware",
    "tenants.middleware.AdminTimezoneMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # The clinic's locale and currency for every page (practice.formats).
    "practice.formats.StyleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.sessions.StaffSessionTimeoutMiddleware",
    "accounts.two_factor.StaffTwoFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # API calls metered (usage) after the answer, API clients' RateLimit-* headers
    "integrations.middleware.ApiUsageMiddleware",
    # Last: turns a sign-in page's lockout into the 429 page (accounts.lockout).
    "axes.middleware.AxesMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.portal",
            ],
        },
    },
]

WSGI_APPLICATION = "clinic.wsgi.application"
ASGI_APPLICATION = "clinic.asgi.application"

DATABASE_URL = env("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/clinic")
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
# django-tenants' backend, with a table list that does not grow with the clinics.
DATABASES["default"]["ENGINE"] = "clinic.postgresql"
# PostgreSQL down is a 503 within about a second (clinic.resilience), never a hang: a
# connection attempt gives up after DB_CONNECT_TIMEOUT seconds (libpq's minimum is 2; a
# stopped server refuses at once), a request waits at most DB_POOL_TIMEOUT for a pooled one.
DB_CONNECT_TIMEOUT = env.int("DB_CONNECT_TIMEOUT", default=2)
DB_POOL_TIMEOUT = env.float("DB_POOL_TIMEOUT", default=1.0)
# Seconds a 503 for an unreachable database tells the client to wait (`Retry-After`).
DB_UNAVAILABLE_RETRY_AFTER = env.int("DB_UNAVAILABLE_RETRY_AFTER", default=2)
DATABASES["default"]["OPTIONS"] = {"connect_timeout": DB_CONNECT_TIMEOUT}
# Pooled or persistent, a connection is checked before a request uses it: after PostgreSQL
# restarted, the broken ones are replaced instead of failing the next requests.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=0)
if DB_POOL_MAX_SIZE:
    # psycopg's pool: opening a connection per request cost two thirds of the throughput.
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": min(2, DB_POOL_MAX_SIZE),
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": DB_POOL_TIMEOUT,
        # A connection idle this long is checked out of the pool's way (as Django's check).
        "max_idle": 60,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Public answers (practitioner search, availability) shared through Redis until a write they
# depend on commits, for at most this long (clinic.api.AnswerCache); 0 turns the cache off.
ANSWER_CACHE_SECONDS = env.int("ANSWER_CACHE_SECONDS", default=30)
# The answer kinds, and the seconds of each where it differs from ANSWER_CACHE_SECONDS
# (`availability=60,practitioner-search=300`; a kind's 0 turns that kind off).
ANSWER_CACHE_KINDS = ("practitioner-search", "availability")
ANSWER_CACHE_SECONDS_BY_KIND: dict[str, int] = {}
for _kind, _seconds in env.dict("ANSWER_CACHE_SECONDS_BY_KIND", default={}).items():
    if _kind not in ANSWER_CACHE_KINDS or not str(_seconds).isdigit():
        raise ImproperlyConfigured(
            f"ANSWER_CACHE_SECONDS_BY_KIND: {_kind}={_seconds} is not <kind>=<seconds>, "
            f"a kind being one of {', '.join(ANSWER_CACHE_KINDS)}."
        )
    ANSWER_CACHE_SECONDS_BY_KIND[_kind] = int(_seconds)

# `/metrics` on the platform host (clinic.metrics) wants `Authorization: Bearer METRICS_TOKEN`;
# without a token it is open outside production and absent (404) in production.
METRICS_TOKEN = env("METRICS_TOKEN", default="")

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Redis down or hung costs a request at most about this much (clinic.resilience): every Redis
# client of the app connects within REDIS_CONNECT_TIMEOUT and reads within
# REDIS_SOCKET_TIMEOUT; after REDIS_BREAKER_FAILURES failures in a row a process stops asking
# for REDIS_BREAKER_SECONDS, and the cache, rate limits and publishes fail open meanwhile.
REDIS_CONNECT_TIMEOUT = env.float("REDIS_CONNECT_TIMEOUT", default=0.1)
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=0.25)
REDIS_BREAKER_FAILURES = env.int("REDIS_BREAKER_FAILURES", default=3)
REDIS_BREAKER_SECONDS = env.int("REDIS_BREAKER_SECONDS", default=2)
CACHES = {
    "default": {
        "BACKEND": "clinic.api.FailOpenRedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {
            "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
            "socket_timeout": REDIS_SOCKET_TIMEOUT,
        },
        # Every key starts with the clinic's schema: clinics never share cache entries.
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="clinic"),
    }
}
# A consumer waits for its next message with BZPOPMIN, which Redis holds for 5 s
# (channels-redis's RedisChannelLayer.brpop_timeout) before answering "nothing yet". redis-py 8
# gives every read a 5 s socket timeout by default, so the read of an idle channel's BZPOPMIN
# would race the block, raise redis TimeoutError out of the layer's receive() and have daphne
# close every idle websocket with 1011 (django/channels_redis#422). The read timeout stays, so
# a dead Redis is still noticed, but well above the block.
CHANNEL_LAYER_SOCKET_TIMEOUT = 15
# Seconds a publish (realtime.groups) waits for the channel layer before it fails open. Not
# shorter: a publish that gives up is an event lost, and a busy machine can be slow; a hung
# Redis costs this only until the breaker opens (clinic.resilience), then nothing.
REALTIME_PUBLISH_TIMEOUT = env.float("REALTIME_PUBLISH_TIMEOUT", default=5.0)
# How often a process that lost events to a Redis fault tries to tell their groups to resync.
REALTIME_RESYNC_RETRY_SECONDS = env.float("REALTIME_RESYNC_RETRY_SECONDS", default=2.0)
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT,
                    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
                }
            ],
            "prefix": env("CHANNEL_LAYER_PREFIX", default="clinic:asgi"),
        },
    }
}

AUTH_USER_MODEL = "accounts.User"
# Passwords as Django does them; permissions from the grants of the roles (accounts.backends).
# The lockout backend comes first: a locked-out sign-in is refused before any password is hashed.
AUTHENTICATION_BACKENDS = ["accounts.lockout.LockoutBackend", "accounts.backends.RoleBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if env.bool("CLINIC_FAST_PASSWORD_HASHER", default=False):
    # Test runs only: argon2 costs ~50 ms per user created.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/admin/login/"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / ".run" / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is missing
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
# Files no URL serves (insurance card images): the admin hands them to staff who may see them.
PRIVATE_MEDIA_ROOT = env.path("PRIVATE_MEDIA_ROOT", default=BASE_DIR / ".run" / "private")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "private": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(PRIVATE_MEDIA_ROOT), "base_url": "/no-public-url/"},
    },
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Serve app static files without a collectstatic step (make run also collects them).
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)
WHITENOISE_AUTOREFRESH = DEBUG

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=str(BASE_DIR / ".run" / "mail"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Clinic <no-reply@clinic.localhost>")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.auth.ClinicJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["clinic.permissions.GrantPermission"],
    "DEFAULT_PAGINATION_CLASS": "clinic.api.Pagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": [
        "clinic.api.FilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "clinic.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "clinic.errors.problem_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["clinic.api.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["clinic.api.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": [
        "clinic.api.AnonRateThrottle",
        "clinic.api.UserRateThrottle",
        # API clients: per client and per clinic, with RateLimit-* headers (integrations)
        "integrations.limits.ApiClientRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("THROTTLE_ANON", default="6000/min"),
        "user": env("THROTTLE_USER", default="60000/min"),
        "token": env("THROTTLE_TOKEN", default="30/min"),
        # The sign-in doors outside the API, per client address (accounts.lockout.door_limits):
        # admin and portal sign-in, sign-up, password reset requests (and per typed email).
        "login": env("THROTTLE_LOGIN", default="30/min"),
        "signup": env("THROTTLE_SIGNUP", default="10/hour"),
        "password_reset": env("THROTTLE_PASSWORD_RESET", default="20/hour"),
        "password_reset_email": env("THROTTLE_PASSWORD_RESET_EMAIL", default="5/hour"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# The client's address (clinic.client_address): `X-Forwarded-For` is believed only when the
# direct peer is one of these proxies (addresses or networks, e.g. "10.0.0.0/8"); by default
# none, so the address is the connection's. Rate limits and lockouts count per this address.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])

# Sign-in lockout (django-axes, accounts.lockout), on every door that checks a password (API
# token, admin, patient sign-in): LOGIN_FAILURE_LIMIT failures of one account, or
# LOGIN_ADDRESS_FAILURE_LIMIT of one address (whatever the emails), each less than the cool-off
# apart, lock it for LOGIN_COOLOFF_MINUTES after the last failure; checked before the password
# is hashed. A clinic admin unlocks from the clinic's admin (Axes: Access attempts); a successful
# sign-in clears the account's failures. Failures live in each clinic's schema.
AXES_ENABLED = env.bool("LOGIN_LOCKOUT", default=True)
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=20)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_HANDLER = "accounts.lockout.LockoutHandler"
AXES_USERNAME_CALLABLE = "accounts.lockout.login_username"
AXES_CLIENT_IP_CALLABLE = "clinic.client_address.client_address"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = True
# Attempts while locked are refused without a write and do not extend the lockout.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are not kept here
AXES_ENABLE_ADMIN = False  # accounts.admin registers its own page, in each admin site
AXES_VERBOSE = False

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=15),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=7),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    # Tokens are signed and verified by accounts.tokens with JWT_SIGNING_KEYS (a kid each);
    # simplejwt's own backend gets no key, so a stock token class can neither sign nor verify.
    "SIGNING_KEY": None,
    "AUTH_TOKEN_CLASSES": ("accounts.tokens.AccessToken",),
    # Clocks of the servers differ a little: PyJWT refuses a token whose `iat` is ahead of its
    # own clock, so one minted on a server a few ms ahead failed on the next second boundary.
    "LEEWAY": timedelta(seconds=5),
    "TOKEN_OBTAIN_SERIALIZER": "accounts.auth.ClinicTokenObtainPairSerializer",
    "TOKEN_REFRESH_SERIALIZER": "accounts.auth.ClinicTokenRefreshSerializer",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Clinic API",
    "DESCRIPTION": (
        "Practice management for outpatient clinics. Every clinic has its own host; "
        "errors are RFC 9457 problem details (application/problem+json)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name for each choice set several serializers use.
    "ENUM_NAME_OVERRIDES": {
        "ClaimStatusEnum": "billing.models.Claim.Status",
        "PartyEnum": "billing.models.LedgerEntry.Party",
        "WriteOffReasonEnum": "billing.models.WriteOffReason",
    },
    # Every error is a problem document (clinic/openapi.py): documented on every operation.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "clinic.openapi.problem_responses",
    ],
    # The token endpoint of API clients (integrations/api/oauth.py) takes HTTP Basic.
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "clientBasic": {
                "type": "http",
                "scheme": "basic",
                "description": "An API client's `client_id` and `client_secret` (RFC 6749 "
                "§2.3.1), at `/api/v1/oauth/token/` only.",
            }
        }
    },
}

CELERY_BROKER_URL = REDIS_URL
# kombu's Redis transport, except that a failed ack frees the worker's prefetch slot.
CELERY_BROKER_TRANSPORT = "clinic.celery:RedisTransport"
CELERY_RESULT_BACKEND = REDIS_URL
# One queue per deployment; test runs get their own so they never share a worker.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", default="clinic")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers an unacknowledged task after this many seconds (a killed worker's job).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", 300),
    # A publish to a hung Redis gives up quickly (clinic.resilience); the worker's own reads
    # wait on its event loop, not on these.
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
    "socket_timeout": max(REDIS_SOCKET_TIMEOUT, 1.0),
    # kombu's connection retries (opening a publisher's channel) default to forever: a hung
    # Redis held a smart-booking POST past 30 s. One retry, then the publish fails.
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.1,
}
# One more try after a broken connection, then the publish fails (each queued row has a sweep
# that queues it again: smart bookings, notifications, next-available refreshes).
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.1,
}
CELERY_TASK_TENANT_CACHE_SECONDS = 30
# Smart booking: worker processes (for the completion estimate), stuck-job sweep, test hook.
# Queue of the smart-booking task (by default the main queue; a deployment may give it
# dedicated workers so bulk tasks never delay a patient watching the status page).
SMART_BOOKING_QUEUE = env("SMART_BOOKING_QUEUE", default=CELERY_TASK_DEFAULT_QUEUE)
SMART_BOOKING_WORKERS = env.int("SMART_BOOKING_WORKERS", default=2)
SMART_BOOKING_STEP_DELAY = env.float("SMART_BOOKING_STEP_DELAY", default=0.0)
SMART_BOOKING_STUCK_SECONDS = env.int("SMART_BOOKING_STUCK_SECONDS", default=60)
# How often the beat refreshes the next-available rows the clock overtakes (minimum notice,
# the search window's end); schedule changes refresh theirs at once.
NEXT_AVAILABLE_REFRESH_SECONDS = env.int("NEXT_AVAILABLE_REFRESH_SECONDS", default=300)
# How long a sweep waits for the writers of a clinic's row of work due (tenants.models.WorkDue)
# before it leaves the clinic due for the next beat.
WORK_DUE_SETTLE_LOCK_MS = env.int("WORK_DUE_SETTLE_LOCK_MS", default=1000)

# The PHI audit trail (audit/): on unless turned off (the bench compares both); events older
# than the retention are purged nightly (6 years: HIPAA's retention of documentation).
AUDIT_ENABLED = env.bool("AUDIT_ENABLED", default=True)
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=2190)
# Seconds between two writes of a process's batched audit events (0: each request's events are
# written right after its response, in a transaction of their own; tests).
AUDIT_FLUSH_SECONDS = env.float("AUDIT_FLUSH_SECONDS", default=0.5)

# API clients (integrations/): the lifetime of a client-credentials access token, and the
# default rate of a client and of all the clients of one clinic (requests per minute, sliding
# window in Redis; a client's own `rate_limit_per_minute` replaces the first).
API_CLIENT_TOKEN_SECONDS = env.int("API_CLIENT_TOKEN_SECONDS", default=900)
API_CLIENT_RATE_PER_MINUTE = env.int("API_CLIENT_RATE_PER_MINUTE", default=600)
API_CLINIC_RATE_PER_MINUTE = env.int("API_CLINIC_RATE_PER_MINUTE", default=3000)

# Usage metering (usage/): API calls, smart-booking jobs, webhooks and notifications counted per
# clinic and day in Redis, rolled up every minute (0: nothing counted; the bench compares both).
USAGE_METERING = env.bool("USAGE_METERING", default=True)
# Counters in Redis hashes (usage, the answer cache's statistics) are summed in each process and
# written once per this many seconds (clinic.counting): a count reaches Redis that much later.
COUNTS_FLUSH_SECONDS = env.float("COUNTS_FLUSH_SECONDS", default=1.0)

# Notifications (notifications/): where SMS go (console, file or Twilio), the queue of the send
# task, retries, the lease after which a crashed send is taken again, how long a signed link
# lives (never past the visit's start), and a test hook that pauses a send before delivery.
SMS_BACKEND = env("SMS_BACKEND", default="notifications.sms.ConsoleSmsBackend")
SMS_FILE_PATH = env("SMS_FILE_PATH", default=str(BASE_DIR / "var" / "sms"))
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM = env("TWILIO_FROM", default="")
NOTIFICATIONS_QUEUE = env("NOTIFICATIONS_QUEUE", default=CELERY_TASK_DEFAULT_QUEUE)
NOTIFICATION_MAX_ATTEMPTS = env.int("NOTIFICATION_MAX_ATTEMPTS", default=6)
NOTIFICATION_LEASE_SECONDS = env.int("NOTIFICATION_LEASE_SECONDS", default=300)
NOTIFICATION_SWEEP_BATCH = env.int("NOTIFICATION_SWEEP_BATCH", default=5000)
NOTIFICATION_SEND_BATCH = env.int("NOTIFICATION_SEND_BATCH", default=50)
NOTIFICATION_LINK_HOURS = env.int("NOTIFICATION_LINK_HOURS", default=72)
NOTIFICATION_LINK_SCHEME = env("NOTIFICATION_LINK_SCHEME", default="https")
NOTIFICATION_SEND_DELAY = env.float("NOTIFICATION_SEND_DELAY", default=0.0)

# Webhooks (webhooks/): the queue of the send task, the client's timeouts, the backoff (base
# doubled per failure up to the max, for WEBHOOK_RETRY_HOURS after the event), how many failures
# in a row disable a subscription, the lease after which a crashed send is taken again, and
# whether URLs may point at private / loopback addresses (never in production: SSRF).
WEBHOOKS_QUEUE = env("WEBHOOKS_QUEUE", default=CELERY_TASK_DEFAULT_QUEUE)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
WEBHOOK_CONNECT_TIMEOUT_SECONDS = env.float("WEBHOOK_CONNECT_TIMEOUT_SECONDS", default=3.0)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=30.0)
WEBHOOK_RETRY_MAX_SECONDS = env.float("WEBHOOK_RETRY_MAX_SECONDS", default=3600.0)
WEBHOOK_RETRY_HOURS = env.float("WEBHOOK_RETRY_HOURS", default=24.0)
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=30)
WEBHOOK_LEASE_SECONDS = env.int("WEBHOOK_LEASE_SECONDS", default=300)
WEBHOOK_SWEEP_BATCH = env.int("WEBHOOK_SWEEP_BATCH", default=5000)
WEBHOOK_ALLOW_PRIVATE_URLS = env.bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=False)
WEBHOOK_SEND_DELAY = env.float("WEBHOOK_SEND_DELAY", default=0.0)

CELERY_BEAT_SCHEDULE = {
    "webhooks-due": {"task": "webhooks.send_due_everywhere", "schedule": 60.0},
    "notifications-due": {"task": "notifications.send_due_everywhere", "schedule": 60.0},
    # Reminders are planned by the booking and by a rule's save; this catches what they missed.
    "notifications-plan": {"task": "notifications.plan_everywhere", "schedule": 3600.0},
    "smart-booking-sweep": {"task": "scheduling.sweep_smart_bookings", "schedule": 30.0},
    # Holds a crashed worker left past their expiry pass on (each hold's own task is first).
    "waitlist-sweep": {"task": "waitlist.sweep_everywhere", "schedule": 30.0},
    "next-available": {
        "task": "scheduling.refresh_next_available_everywhere",
        "schedule": float(NEXT_AVAILABLE_REFRESH_SECONDS),
    },
    "authorization-alerts": {
        "task": "authorizations.daily_alerts",
        "schedule": crontab(hour=11, minute=0),  # 06:00 in New York, 11:00 in Dublin
    },
    "audit-retention": {"task": "audit.purge_everywhere", "schedule": crontab(hour=3, minute=17)},
    "usage-rollup": {"task": "usage.rollup", "schedule": 60.0},
    # Each provisioning queues its own refill; this one catches a refill that failed.
    "schema-pool": {"task": "tenants.schema_pool_refill", "schedule": 600.0},
    "billing-nightly-charges": {
        "task": "billing.nightly_charges",
        "schedule": crontab(hour=6, minute=30),  # after midnight in every clinic's zone
    },
}

# Staff sessions end after this long without a request, and this long after signing in however
# busy (accounts/sessions.py); patients keep Django's two-week sessions.
STAFF_SESSION_IDLE_MINUTES = env.int("STAFF_SESSION_IDLE_MINUTES", default=30)
STAFF_SESSION_MAX_HOURS = env.int("STAFF_SESSION_MAX_HOURS", default=12)

# An inbound 835 of more segments than this is checked by billing's own structural check
# (billing/x12/structure.py) rather than walked through pyx12's full map (~1 ms of CPU per
# segment); unset (X12_PYX12_MAX_SEGMENTS=) to have pyx12 validate every file whole.
X12_PYX12_MAX_SEGMENTS = (
    env.int("X12_PYX12_MAX_SEGMENTS", default=2000)
    if env("X12_PYX12_MAX_SEGMENTS", default="2000")
    else None
)


def _totp_issuer(device) -> str:
    """The name an authenticator app shows beside a staff member's code: their clinic's."""
    from django.db import connection

    return getattr(getattr(connection, "tenant", None), "name", "") or "Clinic"


OTP_TOTP_ISSUER = _totp_issuer
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"  # another site never learns a clinic's page addresses
X_FRAME_OPTIONS = "DENY"

# Production: served over HTTPS behind a proxy. On by default with DEBUG=0 (a deployment that
# forgets it is not left without); `make run` and test runs, plain HTTP on localhost, set it to 0.
CLINIC_PRODUCTION = env.bool("CLINIC_PRODUCTION", default=not DEBUG)
if CLINIC_PRODUCTION:
    # The proxy terminates TLS and always sets X-Forwarded-Proto (overwriting what a client
    # sent); the app servers are reachable only through it. That is what makes trusting the
    # header safe: then `request.is_secure()` is true for HTTPS requests only.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Sent on HTTPS answers only; includeSubDomains covers every clinic's host.
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Webhooks reach public addresses only in production, whatever the environment says (SSRF).
    WEBHOOK_ALLOW_PRIVATE_URLS = False
# The proxy usually redirects HTTP to HTTPS itself; this makes Django do it too.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)

# Content Security Policy (django-csp), in every environment, tests included: scripts and style
# sheets from this origin only (an inline <script> or <style> needs the request's nonce), no
# plugins, no framing, forms posting here only. Style attributes stay allowed
# (`style="--top: 3"`: the board's and the portal's layout values; they cannot run script).
# connect-src also gets the page's websocket origin (realtime.links.ContentSecurityPolicyMiddleware:
# its own port locally, the same origin behind the proxy).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        # The hash: django-tenants' admin templates (index.html, app_list.html) colour the apps'
        # captions with an inline sheet of their own; the browser tests fail if it changes.
        "style-src": [SELF, NONCE, "'sha256-xoIZjqORk+Zj8UH/m/JWU8HyeppwnSb3aTtst4F7uoI='"],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Logs are JSON lines (python-json-logger), each naming its request id and clinic
# (clinic.requestlog); LOG_FORMAT=plain for reading by eye. One `clinic.requests` line per
# request and one `clinic.tasks` line per task (REQUEST_LOG_LEVEL=WARNING turns them off).
LOG_FORMAT = env("LOG_FORMAT", default="json")
REQUEST_LOG_LEVEL = env("REQUEST_LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "clinic.requestlog.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(clinic)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain" if LOG_FORMAT == "plain" else "json",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")},
    "loggers": {
        "clinic.requests": {"level": REQUEST_LOG_LEVEL},
        "clinic.tasks": {"level": REQUEST_LOG_LEVEL},
    },
}
# Workers log through LOGGING above (JSON lines with the request id), not Celery's own setup.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

"""Settings for every environment, read from the environment (django-environ).

Production sets DEBUG=0, SECRET_KEY, DATABASE_URL, REDIS_URL and CLINIC_BASE_DOMAIN;
development and tests fall back to safe local defaults.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="dev-insecure-0b6f1c0e7d0a4c7f9a1e-change-me-in-production")

CLINIC_BASE_DOMAIN = env("CLINIC_BASE_DOMAIN", default="localhost")
# Public URL pieces for absolute links (websocket_url etc.): the websocket server may live on
# another port locally; behind a proxy both are the same origin.
CLINIC_HTTP_PORT = env.int("CLINIC_HTTP_PORT", default=8000)
CLINIC_WS_PORT = env.int("CLINIC_WS_PORT", default=8001)
CLINIC_TEMPLATE_SCHEMA = "clinic_template"
# Seconds a host -> clinic lookup is cached per process (0 turns the cache off).
CLINIC_DOMAIN_CACHE_SECONDS = env.float("CLINIC_DOMAIN_CACHE_SECONDS", default=5.0)

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[CLINIC_BASE_DOMAIN, f".{CLINIC_BASE_DOMAIN}", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list(
    "CSRF_TRUSTED_ORIGINS",
    default=[
        f"http://*.{CLINIC_BASE_DOMAIN}:{CLINIC_HTTP_PORT}",
        f"https://*.{CLINIC_BASE_DOMAIN}",
    ],
)

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
    # Its tables also exist in public: deleting a platform operator cascades to them.
    "rest_framework_simplejwt.token_blacklist",
    "realtime",
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
    "practice",
    "authorizations",
    "scheduling",
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
    "clinic.middleware.ReleaseRequestMiddleware",
    "tenants.middleware.ClinicMiddleware",
    "clinic.middleware.TimezoneResetMiddleware",
    "tenants.middleware.AdminTimezoneMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=0)
if DB_POOL_MAX_SIZE:
    # psycopg's pool: opening a connection per request cost two thirds of the throughput.
    DATABASES["default"]["OPTIONS"] = {
        "pool": {"min_size": min(2, DB_POOL_MAX_SIZE), "max_size": DB_POOL_MAX_SIZE, "timeout": 10}
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Public answers (practitioner search, availability) shared through Redis until a write they
# depend on commits, for at most this long (clinic.api.AnswerCache); 0 turns the cache off.
ANSWER_CACHE_SECONDS = env.int("ANSWER_CACHE_SECONDS", default=30)

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "clinic.api.RedisCache",
        "LOCATION": REDIS_URL,
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
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT}],
            "prefix": env("CHANNEL_LAYER_PREFIX", default="clinic:asgi"),
        },
    }
}

AUTH_USER_MODEL = "accounts.User"
# Passwords as Django does them; permissions from the grants of the roles (accounts.backends).
AUTHENTICATION_BACKENDS = ["accounts.backends.RoleBackend"]
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
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
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
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "clinic.errors.problem_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["clinic.api.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["clinic.api.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": [
        "clinic.api.AnonRateThrottle",
        "clinic.api.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("THROTTLE_ANON", default="6000/min"),
        "user": env("THROTTLE_USER", default="60000/min"),
        "token": env("THROTTLE_TOKEN", default="30/min"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=15),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=7),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "SIGNING_KEY": SECRET_KEY,
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
}

CELERY_BROKER_URL = REDIS_URL
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
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", 300)}
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

CELERY_BEAT_SCHEDULE = {
    "smart-booking-sweep": {"task": "scheduling.sweep_smart_bookings", "schedule": 30.0},
    "next-available": {
        "task": "scheduling.refresh_next_available_everywhere",
        "schedule": float(NEXT_AVAILABLE_REFRESH_SECONDS),
    },
    "authorization-alerts": {
        "task": "authorizations.daily_alerts",
        "schedule": crontab(hour=11, minute=0),  # 06:00 in New York, 11:00 in Dublin
    },
}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")},
}

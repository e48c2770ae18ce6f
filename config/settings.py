"""Settings, all from the environment (see the README's table).

The embedded default needs nothing: SQLite under var/ and Celery tasks run in-process.
DATABASE_URL=postgres://... and CELERY_BROKER_URL=redis://... give the real stack.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url

from config.env import ConfigError, env_bool, env_int, env_list, env_rate, env_str, generated_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("FLEETWATCH_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)
(VAR_DIR / "staticfiles").mkdir(exist_ok=True)

# Off unless asked for: the debug pages show settings, tracebacks and every route.
DEBUG = env_bool("DJANGO_DEBUG", False)
# The embedded default (no DATABASE_URL) and a development stack (DJANGO_DEBUG=true) keep
# a key generated once under var/ (never committed); any other deployment brings its own.
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or (
    generated_secret_key(VAR_DIR / "secret_key") if DEBUG or not env_str("DATABASE_URL") else ""
)
if not SECRET_KEY:
    raise ConfigError(
        "DJANGO_SECRET_KEY: required with DATABASE_URL (set it to 50+ random characters, e.g. "
        "python -c 'import secrets; print(secrets.token_urlsafe(64))'); only the embedded default "
        "(no DATABASE_URL) or DJANGO_DEBUG=true generate one into var/"
    )
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "tenants",
    "analytics",
    "results",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.security.ContentSecurityPolicyMiddleware",
    "config.security.StatementTimeoutMiddleware",
    "config.security.ApiNotFoundMiddleware",
    "tenants.middleware.TenantScopeMiddleware",
    "axes.middleware.AxesMiddleware",  # last: answers a locked-out login with templates/registration/locked_out.html
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    try:
        DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True)}
    except ValueError as exc:
        raise ConfigError(f"DATABASE_URL: {exc}") from None
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "fleetwatch.sqlite3"),
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Login throttling (django-axes) on the dashboard's and the admin's login forms: after
# FLEETWATCH_LOGIN_FAILURE_LIMIT wrong passwords for one username from one address, that
# pair is refused (429, even with the right password) for FLEETWATCH_LOGIN_LOCKOUT_MINUTES;
# a successful login clears its count. Attempts live in the cache (Redis when configured),
# so every web process sees them. Behind a proxy, REMOTE_ADDR is the proxy's address.
AUTHENTICATION_BACKENDS = ["config.security.LoginThrottleBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_FAILURE_LIMIT = env_int("FLEETWATCH_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("FLEETWATCH_LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise serves static files straight from static/ and the apps, with DEBUG off as
# on, so the embedded default needs no collectstatic step.
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"

# Celery: no broker configured means tasks run in-process (the embedded default).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", CELERY_BROKER_URL or "cache+memory://")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# How long an unacknowledged task waits before Redis hands it to another worker.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Storage maintenance has its own queue, so compaction never starves detection.
CELERY_TASK_ROUTES = {"analytics.store.*": {"queue": "maintenance"}}
CELERY_TIMEZONE = "UTC"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "config.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Fleetwatch API",
    "DESCRIPTION": "Multi-tenant anomaly analytics for cloud infrastructure metrics.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Three models have a field named "kind": each enum gets its own name.
    "ENUM_NAME_OVERRIDES": {
        "ChannelKindEnum": "results.notifications.models.Channel.Kind",
        "IncidentKindEnum": "results.models.Incident.Kind",
        "AdjustmentKindEnum": "results.models.Adjustment.Kind",
    },
    # Every tenant API operation may also answer 429 (rate limit) and 503 (statement timeout).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.document_common_errors",
    ],
}

# Ingestion limits.
FLEETWATCH_MAX_BATCH_POINTS = env_int("FLEETWATCH_MAX_BATCH_POINTS", 50_000, minimum=1)
FLEETWATCH_MAX_BODY_BYTES = env_int("FLEETWATCH_MAX_BODY_BYTES", 16 * 1024 * 1024, minimum=1024)
FLEETWATCH_MAX_FUTURE_SECONDS = env_int("FLEETWATCH_MAX_FUTURE_SECONDS", 300, minimum=0)
# Series ids each process remembers by name (analytics/store/series_ids.py); 0 turns it off.
FLEETWATCH_SERIES_ID_CACHE = env_int("FLEETWATCH_SERIES_ID_CACHE", 200_000, minimum=0)
DATA_UPLOAD_MAX_MEMORY_SIZE = FLEETWATCH_MAX_BODY_BYTES
# Levels of arrays and objects a JSON body may nest (config/json_limits.py): ingestion
# needs 5 ({"series": [{"points": [[t, v]]}]}), the rest of the API less; deeper bodies answer 400.
FLEETWATCH_MAX_JSON_DEPTH = env_int("FLEETWATCH_MAX_JSON_DEPTH", 32, minimum=5)

# Detection.
FLEETWATCH_DETECTION_WINDOW_SECONDS = env_int("FLEETWATCH_DETECTION_WINDOW_SECONDS", 300, minimum=1)
FLEETWATCH_DETECTION_BATCH_SIZE = env_int("FLEETWATCH_DETECTION_BATCH_SIZE", 250, minimum=1)
FLEETWATCH_FIRST_RUN_LOOKBACK_HOURS = env_int("FLEETWATCH_FIRST_RUN_LOOKBACK_HOURS", 24, minimum=1)
FLEETWATCH_RUN_STALE_MINUTES = env_int("FLEETWATCH_RUN_STALE_MINUTES", 30, minimum=1)
# Seconds a detection batch task may run: past it the run fails with the reason (the
# worker kills the task 60 s later if it still has not stopped).
FLEETWATCH_DETECTION_TASK_SOFT_TIME_LIMIT = env_int("FLEETWATCH_DETECTION_TASK_SOFT_TIME_LIMIT", 600, minimum=1)
FLEETWATCH_METRIC_WEIGHTS = {"cpu_usage": 2.0, "latency_ms": 2.0, "memory_used": 1.5}

# Cache: shared across processes (Redis) whenever Redis is configured, so per-tenant
# rate limits hold across web processes and machines; local memory otherwise.
CACHE_URL = env_str("FLEETWATCH_CACHE_URL") or env_str("REDIS_URL") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else ""
)
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL, "TIMEOUT": 300}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "fleetwatch"}}
    # axes warns about a per-process cache; without Redis the product serves from one
    # process (the embedded default), whose memory is where login attempts are counted.
    SILENCED_SYSTEM_CHECKS = ["axes.W001"]


def redis_key_settings(prefix: str) -> dict:
    """The settings that start every Redis key with ``prefix``: the broker's (queues, unacknowledged
    messages), the result backend's (results) and the cache's (rate-limit counters). So several
    deployments, or test runs, share one Redis without sharing a queue or a counter. (The tests
    apply it again with a prefix of their own: tests/conftest.py.)"""
    return {
        "FLEETWATCH_REDIS_KEY_PREFIX": prefix,
        "CELERY_BROKER_TRANSPORT_OPTIONS": {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT, "global_keyprefix": prefix},
        "CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS": {"global_keyprefix": prefix},
        "CACHES": {"default": {**CACHES["default"], "KEY_PREFIX": f"{prefix}fleetwatch"}},
    }


globals().update(redis_key_settings(env_str("FLEETWATCH_REDIS_KEY_PREFIX")))

# API limits (see docs/security.md). Rates are per tenant, "<count>/<sec|min|hour|day>";
# ingestion and the rest of the API (reads, detection requests) are counted separately.
FLEETWATCH_API_RATES = {
    "ingest": env_rate("FLEETWATCH_INGEST_RATE", "6000/min"),
    "api": env_rate("FLEETWATCH_API_RATE", "6000/min"),
    "analysis": env_rate("FLEETWATCH_ANALYSIS_RATE", "60/min"),  # on-request analyses (related series)
}
# Series one root-cause analysis reads at most (results/rootcause.py bounds the window too).
FLEETWATCH_RCA_MAX_SERIES = env_int("FLEETWATCH_RCA_MAX_SERIES", 300, minimum=2)
FLEETWATCH_API_MAX_PAGE_SIZE = env_int("FLEETWATCH_API_MAX_PAGE_SIZE", 1000, minimum=1)
FLEETWATCH_API_MAX_OFFSET = env_int("FLEETWATCH_API_MAX_OFFSET", 1_000_000, minimum=0)
# PostgreSQL statement_timeout for web requests only (0 = none); workers, beat and
# management commands do not go through the middleware that sets it.
FLEETWATCH_WEB_STATEMENT_TIMEOUT_MS = env_int("FLEETWATCH_WEB_STATEMENT_TIMEOUT_MS", 30_000, minimum=0)

# Notifications (results/notifications/). Channel secrets are encrypted with Fernet keys
# (comma-separated, the first encrypts, all decrypt, so a key can be rotated); with none set,
# one key is derived from SECRET_KEY.
FLEETWATCH_NOTIFY_SECRET_KEYS = env_list("FLEETWATCH_NOTIFY_SECRET_KEYS", [])
# Hosts (names or IP addresses) a channel may reach although they are loopback, private,
# link-local or metadata addresses: an operator's own receivers (the tests' local ones).
FLEETWATCH_NOTIFY_ALLOWED_HOSTS = env_list("FLEETWATCH_NOTIFY_ALLOWED_HOSTS", [])
FLEETWATCH_NOTIFY_TIMEOUT_SECONDS = env_int("FLEETWATCH_NOTIFY_TIMEOUT_SECONDS", 10, minimum=1)
# Delivery attempts of one notification before it becomes a dead letter, and the
# exponential back-off between them: base * 2**(attempt-1), at most max.
FLEETWATCH_NOTIFY_MAX_ATTEMPTS = env_int("FLEETWATCH_NOTIFY_MAX_ATTEMPTS", 8, minimum=1)
FLEETWATCH_NOTIFY_RETRY_BASE_MS = env_int("FLEETWATCH_NOTIFY_RETRY_BASE_MS", 5_000, minimum=1)
FLEETWATCH_NOTIFY_RETRY_MAX_MS = env_int("FLEETWATCH_NOTIFY_RETRY_MAX_MS", 600_000, minimum=1)
# Alertmanager forgets an alert with no endsAt after its resolve_timeout (5 min by
# default): a firing alert is posted again when its last post is older than this.
FLEETWATCH_ALERTMANAGER_REPOST_SECONDS = env_int("FLEETWATCH_ALERTMANAGER_REPOST_SECONDS", 120, minimum=1)
# The dashboard's address, for the links in notifications.
FLEETWATCH_BASE_URL = env_str("FLEETWATCH_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# E-mail (Django's SMTP backend) for the e-mail channel.
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = FLEETWATCH_NOTIFY_TIMEOUT_SECONDS
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "fleetwatch@localhost")

# Security headers (SecurityMiddleware, XFrameOptionsMiddleware, config.security).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

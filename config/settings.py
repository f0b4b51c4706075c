"""Settings, all from the environment (twelve-factor); SQLite file by default."""

from datetime import timedelta
from pathlib import Path
import os

import orjson

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    """SECRET_KEY, or the contents of the file SECRET_KEY_FILE names (a mounted secret). Without
    either, only a DEBUG server may start, on a key that signs nothing anyone should trust: a public
    default key would let anyone forge sessions, password-reset links and signed cursors."""
    key = os.environ.get("SECRET_KEY", "").strip()
    if not key and os.environ.get("SECRET_KEY_FILE"):
        key = Path(os.environ["SECRET_KEY_FILE"]).read_text().strip()
    if key:
        return key
    if DEBUG:
        return "insecure-debug-only-key"
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Set SECRET_KEY (or SECRET_KEY_FILE) to a long random value, e.g. "
        "python3 -c 'import secrets;print(secrets.token_urlsafe(50))', or run with DEBUG=1 on a development machine."
    )


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "http://127.0.0.1:8000,http://localhost:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "axes",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "core",
    "labels",
    "inventory",
    "traceability",
    "recalls",
    "audit",
    "api",
    "web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the pages' CSS and JavaScript (and the API docs' assets) with or without DEBUG.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last: turns a lockout recorded during authentication into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        # Persistent connections: a request reuses its worker's connection instead of paying a
        # new PostgreSQL connection (and its authentication) every time; checked before reuse.
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "600")),
        conn_health_checks=True,
    )
}
if os.environ.get("TEST_DATABASE_NAME"):
    # Two checkouts testing against one PostgreSQL server each name their own test database.
    DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DATABASE_NAME"]}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Planner settings for this workload, per connection (PostgreSQL's defaults suit other ones):
    # - random_page_cost: the price of a random page read, for storage where it costs about what a
    #   sequential one does (SSD, or tables held in memory). With the default (4, for spinning
    #   disks) the auditor's history by lot scans whole history tables instead of following their
    #   indexes: 380 ms instead of 30 ms at a million vials.
    # - cursor_tuple_fraction: the exports stream through server-side cursors and always read them
    #   to the end; planned for the first 10 % of rows (the default), the vial history of a lot
    #   walks the whole table in date order: 635 ms instead of 65 ms.
    # - jit: compiling a query costs 10 ms or more, more than any of ours runs.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        f"-c random_page_cost={float(os.environ.get('PG_RANDOM_PAGE_COST', '1.1'))} "
        "-c cursor_tuple_fraction=1 -c jit=off"
    )
    # Prepared statements: PostgreSQL plans a query once per connection instead of on every call,
    # which for the 7- to 13-table reads of a page or a scan costs more than running them (2 to
    # 4 ms of planning for 0.5 to 1 ms of execution). Values are bound on the server (Django's
    # server_side_binding) and psycopg prepares a query from its third run on a connection. Behind
    # a connection pooler in transaction mode, which cannot keep a connection's prepared statements,
    # set PG_PREPARED_STATEMENTS=0: values are then bound on the client and nothing is prepared, as
    # Django does by default.
    if os.environ.get("PG_PREPARED_STATEMENTS", "1") != "0":
        DATABASES["default"]["OPTIONS"].update(server_side_binding=True, prepare_threshold=2)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for a writer instead of failing at once with "database is locked". IMMEDIATE: a
    # transaction takes the write lock when it begins, so two workers writing at once queue on the
    # timeout rather than one failing when its read turns into a write (SQLite cannot wait then).
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=20, transaction_mode="IMMEDIATE")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

# --- Authentication: lockout, throttling, tokens, cookies ---------------------------------------

# django-axes counts failed logins (login page, admin and API token alike) and locks the username
# from the address it was tried from: AXES_FAILURE_LIMIT failures, then refused for AXES_COOLOFF_MINUTES,
# even with the right password. Attempts are kept in the database, so every worker sees them.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "api.errors.locked_out"
AXES_VERBOSE = False

# API tokens (django-rest-knox): stored as digests, each expires API_TOKEN_TTL_HOURS after it was
# issued (a shift by default), DELETE /api/auth/token revokes the caller's, and a password change
# revokes them all.
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=float(os.environ.get("API_TOKEN_TTL_HOURS", "10"))),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}

# Browser sessions: a shift long, and the cookies only over HTTPS once HTTPS=1.
HTTPS = env_bool("HTTPS", False)
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(8 * 3600)))
SESSION_EXPIRE_AT_BROWSER_CLOSE = env_bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", True)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", HTTPS)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = os.environ.get("SESSION_COOKIE_SAMESITE", "Lax")
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", HTTPS)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600 if HTTPS else 0)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", HTTPS)
if env_bool("BEHIND_TLS_PROXY", False):
    # The proxy in front terminates TLS and says so; without this, SECURE_SSL_REDIRECT would loop.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# The throttles' counters (and nothing else) live in the cache: Redis when there is one, so that
# every worker counts together.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["REDIS_URL"],
         "KEY_PREFIX": "ivig"}
        if os.environ.get("REDIS_URL")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

LANGUAGE_CODE = "en-us"
# The site's local time zone: "expired" means expiry date before today's date here.
TIME_ZONE = os.environ.get("TIME_ZONE", "America/New_York")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Without `collectstatic` (tests, a fresh checkout) files are found where the apps keep them.
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "var" / "media"))
MEDIA_URL = "media/"

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/scan/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Every view names its own permission; this default only catches a view that forgot.
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    # JSON only; the browsable HTML API is a developer's aid, on when DEBUG is. orjson encodes a
    # recall lookback of thousands of lines six times faster than the standard library.
    "DEFAULT_RENDERER_CLASSES": ["api.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Pagination",
    "PAGE_SIZE": 50,
    # JSON only: a form body would carry every value as text, so "yes" would pass for a boolean and
    # a list would arrive as its last item.
    "DEFAULT_PARSER_CLASSES": ["api.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    # Keys that are not text (a count by id) are written as text, as the standard library does.
    "ORJSON_RENDERER_OPTIONS": (orjson.OPT_NON_STR_KEYS,),
    "DEFAULT_SCHEMA_CLASS": "api.schema.Schema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # Only the token endpoint is throttled: it is the one that takes passwords.
    "DEFAULT_THROTTLE_RATES": {"login": os.environ.get("LOGIN_THROTTLE_RATE", "10/min")},
}

SPECTACULAR_SETTINGS = {
    "TITLE": "IVIG lot-traceability API",
    "DESCRIPTION": "Inventory, dispensing, recalls and audit history for IVIG and SCIG products.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs' Swagger UI is served from this server, not from a CDN (pharmacy networks are closed).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a `status`, `kind` or `severity`; give each choice set its own name.
    "ENUM_NAME_OVERRIDES": {
        "LotStatusEnum": "inventory.models.Lot.Status",
        "VialStatusEnum": "inventory.models.Vial.Status",
        "LocationKindEnum": "inventory.models.StorageLocation.Kind",
        "SessionStatusEnum": "traceability.models.InfusionSession.Status",
        "SessionRouteEnum": "traceability.models.InfusionSession.Route",
        "ProductRouteEnum": "inventory.models.Product.Route",
        "OverrideStatusEnum": "traceability.models.DispenseOverride.Status",
        "DispenseStatusEnum": "traceability.models.Dispense.Status",
        "FlagStatusEnum": "traceability.models.BrandSwitchFlag.Status",
        "FlagKindEnum": "traceability.models.BrandSwitchFlag.Kind",
        "ReactionSeverityEnum": "traceability.models.AdverseReaction.Severity",
        "RecallStatusEnum": "recalls.models.Recall.Status",
        "ExcursionStatusEnum": "inventory.models.Excursion.Status",
        "ExcursionOutcomeEnum": "inventory.models.ExcursionVial.Outcome",
        "NotificationStatusEnum": "recalls.models.NotificationTask.Status",
        "WarningSeverityEnum": ["red", "amber"],
    },
}

# Clinical checks at dispense (traceability.clinical): the highest IgA content given to a patient
# with antibodies against IgA, and the concentration above which a patient with renal impairment
# gets a caution (the boxed warning asks for the minimum concentration practicable).
CLINICAL_IGA_LIMIT_UG_PER_ML = os.environ.get("CLINICAL_IGA_LIMIT_UG_PER_ML", "50")
CLINICAL_RENAL_MAX_CONCENTRATION_PCT = os.environ.get("CLINICAL_RENAL_MAX_CONCENTRATION_PCT", "5")

# Treatment authorisations (traceability.authorisations): with AUTHORISATION_REQUIRED a session
# without a current authorisation is refused at dispense until a pharmacist overrides it; without
# it (a site not yet entering its authorisations) the vial is given and the dispense joins the
# authorisation discrepancy queue. Every other authorisation check applies either way.
AUTHORISATION_REQUIRED = env_bool("AUTHORISATION_REQUIRED", True)
# Expiring authorisations: the default look-ahead of the report, in days.
AUTHORISATION_EXPIRY_WARNING_DAYS = int(os.environ.get("AUTHORISATION_EXPIRY_WARNING_DAYS", "30"))

# Celery: with no broker configured (the embedded default) tasks run in-process.
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
# Exports above this many history rows run as a background job (HTTP 202).
AUDIT_EXPORT_SYNC_MAX_ROWS = int(os.environ.get("AUDIT_EXPORT_SYNC_MAX_ROWS", "20000"))
# How long dispense and recall records (and the lookbacks exported from them) are kept, in years.
# Default 30: the longest rule a site is likely to meet. Germany's Transfusion Act (TFG § 14(3))
# keeps records of each use of a blood product, plasma derivatives such as immunoglobulin
# included, for at least 30 years, as EU Directive 2002/98/EC does for blood components; DSCSA
# asks 6 years of transaction records. Nothing is ever deleted here: this is the period the
# export states, for the site's own records policy.
RECORD_RETENTION_YEARS = int(os.environ.get("RECORD_RETENTION_YEARS", "30"))

# The lot-level reaction signal (recalls.signals): a lot is listed for the recall coordinator when
# the exact test of its reactions per infusion against the rest of its brand gives a p-value below
# LOT_SIGNAL_ALPHA and it has at least LOT_SIGNAL_MIN_REACTIONS reactions. The test runs over
# every lot, so the threshold is strict; it is a screen, not a verdict.
LOT_SIGNAL_ALPHA = float(os.environ.get("LOT_SIGNAL_ALPHA", "0.01"))
LOT_SIGNAL_MIN_REACTIONS = int(os.environ.get("LOT_SIGNAL_MIN_REACTIONS", "3"))

# How FHIR resources name the site's medical record numbers (Patient.identifier.system).
FHIR_MRN_SYSTEM = os.environ.get("FHIR_MRN_SYSTEM", "urn:ivig-trace:mrn")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}

# Tamper evidence (audit.chain): the HMAC key of the history's seals and checkpoints. Keep it out of
# the database (and its backups); without it, it is derived from SECRET_KEY. Changing it makes
# verify_history report every row sealed before the change.
AUDIT_SEAL_KEY = os.environ.get("AUDIT_SEAL_KEY", "")
# A Celery beat task takes a checkpoint this often (and every export takes one).
AUDIT_CHECKPOINT_MINUTES = int(os.environ.get("AUDIT_CHECKPOINT_MINUTES", "15"))
# Seal ids still uncommitted when a checkpoint is taken are looked for again this long.
AUDIT_CHECKPOINT_GAP_HOURS = int(os.environ.get("AUDIT_CHECKPOINT_GAP_HOURS", "24"))
# How long history and the access log are kept, in days; empty: forever. Only
# `manage.py purge_history --reason …` deletes, and only what is older, recording who and why.
AUDIT_RETENTION_DAYS = int(os.environ["AUDIT_RETENTION_DAYS"]) if os.environ.get("AUDIT_RETENTION_DAYS") else None
# The admin shows history but never reverts to it: corrections are new, audited actions.
SIMPLE_HISTORY_REVERT_DISABLED = True
CELERY_BEAT_SCHEDULE = {
    "audit-checkpoint": {"task": "audit.checkpoint", "schedule": AUDIT_CHECKPOINT_MINUTES * 60.0},
}

"""Settings, all from the environment (twelve-factor); SQLite file by default."""

from pathlib import Path
import os

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and os.environ.get("DJANGO_REQUIRE_SECRET_KEY"):
        raise RuntimeError("SECRET_KEY must be set in production")
    # Note: only for the embedded demo and tests; production sets SECRET_KEY.
    SECRET_KEY = "insecure-local-key-set-SECRET_KEY-in-production"
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
    "rest_framework.authtoken",
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
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "0")),
    )
}
if os.environ.get("TEST_DATABASE_NAME"):
    # Two checkouts testing against one PostgreSQL server each name their own test database.
    DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DATABASE_NAME"]}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for a writer instead of failing at once with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

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
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Every view names its own permission; this default only catches a view that forgot.
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    # JSON only; the browsable HTML API is a developer's aid, on when DEBUG is.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_PARSER_CLASSES": [
        "api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
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
        "NotificationStatusEnum": "recalls.models.NotificationTask.Status",
        "WarningSeverityEnum": ["red", "amber"],
    },
}

# Clinical checks at dispense (traceability.clinical): the highest IgA content given to a patient
# with antibodies against IgA, and the concentration above which a patient with renal impairment
# gets a caution (the boxed warning asks for the minimum concentration practicable).
CLINICAL_IGA_LIMIT_UG_PER_ML = os.environ.get("CLINICAL_IGA_LIMIT_UG_PER_ML", "50")
CLINICAL_RENAL_MAX_CONCENTRATION_PCT = os.environ.get("CLINICAL_RENAL_MAX_CONCENTRATION_PCT", "5")

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

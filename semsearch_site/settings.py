"""Django settings, read from the environment (django-environ).

Two run modes share this one file:

* **Embedded default** — nothing configured: SQLite, media and index files under ``SEMSEARCH_DATA_DIR``
  (``./data``), Celery over kombu's filesystem transport, so a worker process started beside the web server does
  the background work without Redis or PostgreSQL.
* **Services** — ``DATABASE_URL`` (PostgreSQL via psycopg 3) and/or ``REDIS_URL`` (Celery broker and Django cache).

Every variable is listed, with its default, in the README's "Configuration" table.
"""

from __future__ import annotations

from pathlib import Path

import environ
import orjson
from django.core.exceptions import ImproperlyConfigured

from semsearch_site.bootstrap import SECRET_KEY_FILE, data_dir, storage_root
from semsearch_site.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# --- Storage ----------------------------------------------------------------------------------------------------
DATA_DIR = data_dir()
STORAGE_ROOT = storage_root()
MEDIA_ROOT = STORAGE_ROOT / "media"
INDEX_ROOT = STORAGE_ROOT / "index"
# The folders and the generated secret key are created by ``semsearch_site.bootstrap`` when a process starts.


def _secret_key() -> str:
    """The configured key, else the one ``bootstrap.data_dir_prepare`` generated into the data folder."""
    configured = env.str("SECRET_KEY", default="")
    if configured:
        return configured
    key_file = DATA_DIR / SECRET_KEY_FILE
    if not key_file.exists():
        raise ImproperlyConfigured(
            f"No SECRET_KEY is set and {key_file} does not exist: set SECRET_KEY, or start through manage.py, "
            "the WSGI/ASGI application or the Celery app, which create it."
        )
    return key_file.read_text().strip()


# --- Core -------------------------------------------------------------------------------------------------------
SECRET_KEY = _secret_key()
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_prometheus",
    "images",
    "search",
    "workers",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "semsearch_site.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "semsearch_site.middleware.DatabaseUnavailableMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "semsearch_site.urls"
WSGI_APPLICATION = "semsearch_site.wsgi.application"
ASGI_APPLICATION = "semsearch_site.asgi.application"

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

# --- Database ---------------------------------------------------------------------------------------------------
SERVICE_DATABASE = "DATABASE_URL" in env
_db = env.db_url("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'semsearch.sqlite3'}")
# Persistent connections with a health check, so a restarted PostgreSQL is reconnected to by itself. SQLite too:
# opening the file, its PRAGMAs and re-reading the schema cost ~1 ms of every search request.
_db["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
_db["CONN_HEALTH_CHECKS"] = True
if _db["ENGINE"] == "django.db.backends.postgresql":
    _db.setdefault("OPTIONS", {})["connect_timeout"] = env.int("DATABASE_CONNECT_TIMEOUT", default=5)
elif _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the worker writes; IMMEDIATE avoids lock-upgrade deadlocks.
    _db["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file (not :memory:) so a worker subprocess started by a test can open the test database.
    _db["TEST"] = {"NAME": str(Path(_db["NAME"]).with_name("test-" + Path(_db["NAME"]).name))}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and broker -------------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "semsearch_site.cache.FailOpenRedisCache",  # a Redis outage is a cache miss, not a 500
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "control_folder": str(BROKER_DIR / "control"),
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        # kombu sleeps this long between empty polls of the queue folder (its default, 1 s, capped delivery at one
        # message a second); 50 ms delivers at once and costs an idle worker ~1% of a core (docs/ingestion.md).
        "polling_interval": env.float("CELERY_BROKER_POLLING_INTERVAL", default=0.05),
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # kombu's Redis transport with a fix that keeps a worker alive through a Redis restart (see the module).
    CELERY_BROKER_TRANSPORT = "semsearch_site.broker:RedisTransport"
    # Longer than the longest task time limit, so a slow task is never redelivered while it still runs.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=1500)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=1800)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "workers.tasks.embed_*": {"queue": "embed"},
    "workers.tasks.index_*": {"queue": "index"},
    "workers.tasks.enrich_*": {"queue": "enrich"},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Static and media -------------------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
# The embedded default serves static files straight from the apps' folders (no collectstatic step). With a
# DATABASE_URL, once collectstatic has run, only the collected, compressed copies are served: finders would shadow
# them with the uncompressed originals.
WHITENOISE_USE_FINDERS = DEBUG or not SERVICE_DATABASE or not STATIC_ROOT.is_dir()
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("SEMSEARCH_MAX_UPLOAD_BYTES", default=50 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = env.int("SEMSEARCH_MAX_FILES_PER_UPLOAD", default=500)

# --- Security (production values come from the environment) ---------------------------------------------------
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=SECURE_HSTS_SECONDS > 0)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Health probes and metric scrapes use plain HTTP inside the deployment; they are never redirected to HTTPS.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- REST API ---------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_SCHEMA_CLASS": "semsearch_site.api_schema.ApiAutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.ScopedRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "search": env.str("THROTTLE_SEARCH", default="120/min"),
        "upload": env.str("THROTTLE_UPLOAD", default="60/min"),
        "read": env.str("THROTTLE_READ", default="600/min"),
        # URL terms in searches and add-by-URL: per user (or address, when anonymous) and per client address.
        "fetch": env.str("THROTTLE_FETCH", default="20/min"),
    },
    "EXCEPTION_HANDLER": "semsearch_site.errors.api_exception_handler",
    # orjson renders JSON (the standard library's encoder was a measurable share of a search; docs/search.md).
    "DEFAULT_RENDERER_CLASSES": [
        "drf_orjson_renderer.renderers.ORJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "ORJSON_RENDERER_OPTIONS": [orjson.OPT_NON_STR_KEYS, orjson.OPT_SERIALIZE_NUMPY],
    # `format` is a catalogue filter (format=PNG), not DRF's renderer switch: responses are always JSON.
    "URL_FORMAT_OVERRIDE": None,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "semsearch API",
    "DESCRIPTION": "Image semantic search: find images by text, by example image, or both.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- semsearch --------------------------------------------------------------------------------------------------
SEMSEARCH_MODEL_ID = env.str("SEMSEARCH_MODEL_ID", default="openai/clip-vit-base-patch32")
SEMSEARCH_MODEL_REVISION = env.str("SEMSEARCH_MODEL_REVISION", default="")
SEMSEARCH_TOY_MODEL_DIR = BASE_DIR / "models" / "tiny-clip"
SEMSEARCH_DEVICE = env.str("SEMSEARCH_DEVICE", default="auto")
SEMSEARCH_TORCH_THREADS = env.int("SEMSEARCH_TORCH_THREADS", default=0)
SEMSEARCH_PRECISION = env.str("SEMSEARCH_PRECISION", default="auto")
SEMSEARCH_EMBED_BATCH_SIZE = env.int("SEMSEARCH_EMBED_BATCH_SIZE", default=16)
# The worker feeds the model from the stored thumbnail when it is large enough (decoded once on the way in).
SEMSEARCH_EMBED_FROM_THUMBNAIL = env.bool("SEMSEARCH_EMBED_FROM_THUMBNAIL", default=True)
SEMSEARCH_MAX_IMAGE_PIXELS = env.int("SEMSEARCH_MAX_IMAGE_PIXELS", default=64_000_000)
SEMSEARCH_MAX_ARCHIVE_MEMBERS = env.int("SEMSEARCH_MAX_ARCHIVE_MEMBERS", default=10_000)
SEMSEARCH_THUMBNAIL_SIZE = env.int("SEMSEARCH_THUMBNAIL_SIZE", default=384)
SEMSEARCH_FETCH_TIMEOUT = env.float("SEMSEARCH_FETCH_TIMEOUT", default=20.0)
SEMSEARCH_FETCH_MAX_BYTES = env.int("SEMSEARCH_FETCH_MAX_BYTES", default=25 * 1024 * 1024)
SEMSEARCH_FETCH_ALLOWLIST = env.list("SEMSEARCH_FETCH_ALLOWLIST", default=[])
# URL downloads in flight at once per web process; one more is refused at once (503), never queued.
SEMSEARCH_FETCH_CONCURRENCY = env.int("SEMSEARCH_FETCH_CONCURRENCY", default=4)
# Total seconds for the picture behind a URL term in a search (a slower one ends the search with a 504).
SEMSEARCH_QUERY_FETCH_TIMEOUT = env.float("SEMSEARCH_QUERY_FETCH_TIMEOUT", default=5.0)
SEMSEARCH_URL_TERMS_ANONYMOUS = env.bool("SEMSEARCH_URL_TERMS_ANONYMOUS", default=False)
SEMSEARCH_INDEX_MEMORY_BUDGET_MB = env.int("SEMSEARCH_INDEX_MEMORY_BUDGET_MB", default=4096)
SEMSEARCH_INDEX_RECALL_TARGET = env.float("SEMSEARCH_INDEX_RECALL_TARGET", default=0.95)
SEMSEARCH_INDEX_THREADS = env.int("SEMSEARCH_INDEX_THREADS", default=0)
SEMSEARCH_INDEX_FLAT_MAX_VECTORS = env.int("SEMSEARCH_INDEX_FLAT_MAX_VECTORS", default=50_000)
SEMSEARCH_DELTA_COMPACT_THRESHOLD = env.int("SEMSEARCH_DELTA_COMPACT_THRESHOLD", default=5000)
SEMSEARCH_SEARCH_PUBLIC = env.bool("SEMSEARCH_SEARCH_PUBLIC", default=True)
SEMSEARCH_PENDING_REQUEUE_MINUTES = env.int("SEMSEARCH_PENDING_REQUEUE_MINUTES", default=5)
SEMSEARCH_RECONCILE_SECONDS = env.int("SEMSEARCH_RECONCILE_SECONDS", default=300)
# A Celery worker serves its own /metrics (task timings, embedding throughput) on this port; 0: off.
SEMSEARCH_WORKER_METRICS_PORT = env.int("SEMSEARCH_WORKER_METRICS_PORT", default=0)

# Enrichment after embedding (docs/enrichment.md): automatic tags from the search model, text read from the picture.
SEMSEARCH_AUTOTAGS = env.bool("SEMSEARCH_AUTOTAGS", default=True)
# "auto": the toy vocabulary for the toy model, the everyday one otherwise; or a name in search/enrichment/
# vocabularies, or a path to a vocabulary file.
SEMSEARCH_AUTOTAG_VOCABULARY = env.str("SEMSEARCH_AUTOTAG_VOCABULARY", default="auto")
SEMSEARCH_AUTOTAG_MAX_PER_IMAGE = env.int("SEMSEARCH_AUTOTAG_MAX_PER_IMAGE", default=10)
SEMSEARCH_OCR = env.bool("SEMSEARCH_OCR", default=True)
SEMSEARCH_OCR_LANGUAGES = env.str("SEMSEARCH_OCR_LANGUAGES", default="eng")
SEMSEARCH_OCR_TESSDATA = env.str("SEMSEARCH_OCR_TESSDATA", default="")
SEMSEARCH_OCR_TIMEOUT_SECONDS = env.float("SEMSEARCH_OCR_TIMEOUT_SECONDS", default=20.0)
SEMSEARCH_OCR_MAX_SIDE = env.int("SEMSEARCH_OCR_MAX_SIDE", default=2000)

CELERY_BEAT_SCHEDULE = {
    "reconcile": {"task": "workers.tasks.index_reconcile", "schedule": SEMSEARCH_RECONCILE_SECONDS},
}

# --- Logging ----------------------------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG or not SERVICE_DATABASE else "json")
LOGGING = logging_config(LOG_FORMAT, LOG_LEVEL)

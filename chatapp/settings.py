"""The only settings module.

Every environment variable is read in the block below, through `_env()`, which records the
name: `tests/test_settings_env.py` fails when a variable read here is missing from the README's
table. Nothing below the block reads the environment.
"""

from __future__ import annotations

import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent

ENV_VARS_READ: dict[str, str] = {}


def _env(name: str, default: str = "") -> str:
    value = os.environ.get(name, default)
    ENV_VARS_READ[name] = default
    return value


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name, "true" if default else "false").strip().lower()
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in _env(name, default).split(",") if item.strip()]


def _env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = _env(name, default).strip().lower()
    if raw not in choices:
        raise ValueError(f"{name} must be {', '.join(choices[:-1])} or {choices[-1]}, got {raw!r}")
    return raw


def _env_number(name: str, default: float) -> float:
    raw = _env(name, str(default))
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


# ---------------------------------------------------------------------------------------------
# Environment (the README's table lists every variable read here)
# ---------------------------------------------------------------------------------------------
VAR_DIR = Path(_env("CHAT_VAR_DIR", str(BASE_DIR / "var")))
SECRET_KEY_ENV = _env("DJANGO_SECRET_KEY")
DEBUG = _env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = _env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")
HTTPS = _env_bool("DJANGO_HTTPS", False)
# Who may create an account: anyone (`open`), anyone but an administrator approves them before
# they can sign in (`approval`), or nobody (`closed`). The first account is the administrator.
SIGNUP = _env_choice("DJANGO_SIGNUP", "approval", ("open", "approval", "closed"))
DATABASE_URL = _env("DATABASE_URL")
REDIS_URL = _env("REDIS_URL")
MEDIA_ROOT = Path(_env("MEDIA_ROOT", str(VAR_DIR / "media")))
STATIC_ROOT = Path(_env("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
LOG_LEVEL = _env("LOG_LEVEL", "INFO").upper()
AIMLAPI_API_KEY = _env("AIMLAPI_API_KEY")
AIMLAPI_BASE_URL = _env("AIMLAPI_BASE_URL", "https://api.aimlapi.com/v1")
GEMINI_API_KEY = _env("GEMINI_API_KEY")
GEMINI_BASE_URL = _env("GEMINI_BASE_URL", "https://generativelanguage.googleapis.com/v1beta")
SEGMIND_API_KEY = _env("SEGMIND_API_KEY")
SEGMIND_BASE_URL = _env("SEGMIND_BASE_URL", "https://api.segmind.com/v1")
# Fernet keys that encrypt each person's own API keys at rest, newest first (the first
# encrypts, every one decrypts: rotation, docs/SECURITY.md rule 12). Unset: one generated
# into CHAT_VAR_DIR (chatapp/credentials/crypto.py), never the secret key.
CHAT_KEY_ENCRYPTION_KEYS = _env_list("CHAT_KEY_ENCRYPTION_KEYS", "")
UPSTREAM_CONNECT_TIMEOUT = _env_number("UPSTREAM_CONNECT_TIMEOUT", 10)
UPSTREAM_READ_TIMEOUT = _env_number("UPSTREAM_READ_TIMEOUT", 120)
CHAT_MAX_MESSAGE_CHARS = int(_env_number("CHAT_MAX_MESSAGE_CHARS", 100_000))
CHAT_SENDS_PER_MINUTE = int(_env_number("CHAT_SENDS_PER_MINUTE", 30))
CHAT_MAX_ACTIVE_TURNS_PER_USER = int(_env_number("CHAT_MAX_ACTIVE_TURNS_PER_USER", 4))
CHAT_WORKER_HEARTBEAT_SECONDS = _env_number("CHAT_WORKER_HEARTBEAT_SECONDS", 10)
CHAT_STREAM_FRAMES_PER_SECOND = _env_number("CHAT_STREAM_FRAMES_PER_SECOND", 20)
CHAT_STREAM_PEAK_FRAMES_PER_SECOND = _env_number("CHAT_STREAM_PEAK_FRAMES_PER_SECOND", 0)
CHAT_REQUEST_CONCURRENCY = int(_env_number("CHAT_REQUEST_CONCURRENCY", 2))
CHAT_STREAM_UNPACED_CHUNKS_PER_SECOND = _env_number("CHAT_STREAM_UNPACED_CHUNKS_PER_SECOND", 5000)
CHAT_CHECKPOINT_SECONDS = _env_number("CHAT_CHECKPOINT_SECONDS", 1)
CHAT_MAX_IMAGE_MB = _env_number("CHAT_MAX_IMAGE_MB", 50)
CHAT_MAX_IMAGE_MEGAPIXELS = _env_number("CHAT_MAX_IMAGE_MEGAPIXELS", 120)
CHAT_MAX_IMAGES_PER_MESSAGE = int(_env_number("CHAT_MAX_IMAGES_PER_MESSAGE", 8))
CHAT_IMAGE_LONGEST_SIDE = int(_env_number("CHAT_IMAGE_LONGEST_SIDE", 3072))
CHAT_UPLOADS_PER_MINUTE = int(_env_number("CHAT_UPLOADS_PER_MINUTE", 60))
CHAT_MAX_IMPORT_MB = _env_number("CHAT_MAX_IMPORT_MB", 50)
AIMLAPI_MAX_REQUEST_MB = _env_number("AIMLAPI_MAX_REQUEST_MB", 20)
# Uploads in an S3-compatible bucket instead of MEDIA_ROOT (needs `pip install '.[s3]'`). All
# are read even when unused, so the README table and this block stay in step.
AWS_STORAGE_BUCKET_NAME = _env("AWS_STORAGE_BUCKET_NAME")
AWS_S3_ENDPOINT_URL = _env("AWS_S3_ENDPOINT_URL")
AWS_S3_REGION_NAME = _env("AWS_S3_REGION_NAME")
AWS_ACCESS_KEY_ID = _env("AWS_ACCESS_KEY_ID")
AWS_SECRET_ACCESS_KEY = _env("AWS_SECRET_ACCESS_KEY")
AWS_LOCATION = _env("AWS_LOCATION")
CHAT_LOGIN_FAILURE_LIMIT = int(_env_number("CHAT_LOGIN_FAILURE_LIMIT", 5))
CHAT_LOGIN_LOCKOUT_MINUTES = _env_number("CHAT_LOGIN_LOCKOUT_MINUTES", 15)
# Who writes a conversation's title after its first answer (chatapp/turns/titles.py): "" picks
# a fast Gemini model on a route with a key, "off" keeps the first line, or "route:model".
CHAT_TITLE_MODEL = _env("CHAT_TITLE_MODEL", "")
# ---------------------------------------------------------------------------------------------

TESTING = "pytest" in sys.modules


def _local_secret_key() -> str:
    """Development convenience: one random key, generated once, kept in an ignored file."""
    path = VAR_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(50)
        # O_EXCL: two processes starting at once agree on the first key written.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key


SECRET_KEY = SECRET_KEY_ENV or _local_secret_key()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "channels",
    "axes",
    "chatapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before the login check, which answers an htmx request with a client-side redirect.
    "django_htmx.middleware.HtmxMiddleware",
    "chatapp.web.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "chatapp.web.middleware.SecurityHeadersMiddleware",
    # Last, as django-axes asks: it turns a locked-out log-in into its refusal page.
    "axes.middleware.AxesMiddleware",
]

# Log-in throttling (django-axes): after CHAT_LOGIN_FAILURE_LIMIT failures in a row for one
# username, or from one client address, log-ins there are refused for
# CHAT_LOGIN_LOCKOUT_MINUTES, the right password included; the admin's log-in too. A success
# clears the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend with a prepared lookup of the signed-in person (accounts.backends).
    "chatapp.accounts.backends.PersonBackend",
]
SESSION_ENGINE = "chatapp.accounts.sessions"
AXES_FAILURE_LIMIT = CHAT_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=CHAT_LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "chatapp.web.views.accounts.locked_out"
AXES_CLIENT_IP_CALLABLE = "chatapp.web.middleware.client_address"
AXES_VERBOSE = False

ROOT_URLCONF = "chatapp.web.urls"
ASGI_APPLICATION = "chatapp.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {
            # The project's templates without indentation or lines of only control tags
            # (chatapp/web/template_loader.py); Django's own (the admin's) as they are.
            "loaders": [
                (
                    "django.template.loaders.cached.Loader",
                    [
                        "chatapp.web.template_loader.Loader",
                        "django.template.loaders.app_directories.Loader",
                    ],
                )
            ],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # Template tags live with the web layer, not in an app-level templatetags package.
            "libraries": {"chat": "chatapp.web.templatetags.chat"},
            # `{% url %}` that reverses a link's shape once (chatapp/web/templatetags/links.py).
            "builtins": ["chatapp.web.templatetags.links"],
        },
    }
]

SQLITE_OPTIONS = {
    # WAL lets readers proceed during a write; IMMEDIATE takes the write lock at BEGIN so two
    # writers queue on busy_timeout instead of failing mid-transaction.
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": (
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=NORMAL;"
        "PRAGMA busy_timeout=20000;"
        "PRAGMA foreign_keys=ON;"
        "PRAGMA temp_store=MEMORY;"
    ),
}
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Under ASGI every request and every run write may land on a different thread, so
        # persistent per-thread connections leak; psycopg's pool is Django's answer (5.1+).
        DATABASES["default"]["OPTIONS"] = {"pool": {"min_size": 2, "max_size": 20, "timeout": 10}}
    elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        DATABASES["default"]["OPTIONS"] = dict(SQLITE_OPTIONS)
        DATABASES["default"]["CONN_MAX_AGE"] = 600
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "db.sqlite3"),
            "OPTIONS": dict(SQLITE_OPTIONS),
            # Request threads are pooled (chatapp.asgi), so a connection serves many requests.
            "CONN_MAX_AGE": 600,
            # A file, not :memory:, so that the browser tests' server thread shares it.
            "TEST": {"NAME": str(VAR_DIR / "test.sqlite3")},
        }
    }
    VAR_DIR.mkdir(parents=True, exist_ok=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if REDIS_URL:
    # The pub/sub layer, not channels-redis' core layer: a frame is one PUBLISH, delivered
    # through one subscription per process. The core layer's receive is a blocking pop plus a
    # backup write and a cleanup script per message, all local channels of a process share one
    # 1,000-message capacity, and its pool ran out: at 200 streams it dropped and failed
    # answers (bench/README.md). Late joiners do not need replay: they ask the run for a
    # snapshot by offset.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "chatapp.core.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 1000},
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Tests script every upstream request; the title tests turn titles on for themselves.
    if "CHAT_TITLE_MODEL" not in os.environ:
        CHAT_TITLE_MODEL = "off"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat-home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploads are served only by the owner-checking view, never from a public URL (docs/SECURITY.md rule 8).
MEDIA_URL = None
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
if AWS_STORAGE_BUCKET_NAME:
    # Private objects (the bucket's default ACL), never public URLs: the app reads each file
    # itself and serves it through the owner-checking view (docs/SECURITY.md rule 8).
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": AWS_S3_ENDPOINT_URL or None,
            "region_name": AWS_S3_REGION_NAME or None,
            # Unset: boto3's own chain (instance role, ~/.aws, its environment variables).
            "access_key": AWS_ACCESS_KEY_ID or None,
            "secret_key": AWS_SECRET_ACCESS_KEY or None,
            "location": AWS_LOCATION,
            "default_acl": None,
            "file_overwrite": False,
            "querystring_auth": True,
        },
    }
WHITENOISE_USE_FINDERS = DEBUG

# Security headers. HTTPS-only settings switch on with DJANGO_HTTPS=true (behind TLS).
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31_536_000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "chatapp.core.logging.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # django-axes logs every log-in at INFO; lockouts are warnings.
        "axes": {"level": "WARNING"},
    },
}

# ---------------------------------------------------------------------------------------------
# Providers, shaped like STORAGES: alias -> BACKEND + OPTIONS. A route exists only when its key
# is set; with no key at all the offline demo is the only route, so the first run works.
# ---------------------------------------------------------------------------------------------
UPSTREAM_TIMEOUTS = {
    "connect": UPSTREAM_CONNECT_TIMEOUT,
    "read": UPSTREAM_READ_TIMEOUT,
    "write": 30.0,
    "pool": 10.0,
}
# Where each upstream route is and which adapter speaks it, with a server key or without one:
# a person's own key (chatapp/credentials) can open a route the server has no key for.
ROUTES: dict[str, dict] = {
    "aimlapi": {
        "BACKEND": "chatapp.providers.openai_compat.OpenAICompatProvider",
        "OPTIONS": {"base_url": AIMLAPI_BASE_URL},
    },
    "gemini": {
        "BACKEND": "chatapp.providers.gemini.google.GeminiProvider",
        "OPTIONS": {"base_url": GEMINI_BASE_URL},
    },
    "segmind": {
        "BACKEND": "chatapp.providers.gemini.segmind.SegmindProvider",
        "OPTIONS": {"base_url": SEGMIND_BASE_URL},
    },
}
PROVIDERS: dict[str, dict] = {
    alias: {**route, "OPTIONS": {**route["OPTIONS"], "api_key": key}}
    for alias, route, key in (
        ("aimlapi", ROUTES["aimlapi"], AIMLAPI_API_KEY),
        ("gemini", ROUTES["gemini"], GEMINI_API_KEY),
        ("segmind", ROUTES["segmind"], SEGMIND_API_KEY),
    )
    if key
}
if not PROVIDERS:
    PROVIDERS["demo"] = {"BACKEND": "chatapp.providers.demo.DemoProvider", "OPTIONS": {}}

# Limits, each named in the error a person sees when they hit it (docs/SECURITY.md rule 14).
CHAT_LIMITS = {
    "message_chars": CHAT_MAX_MESSAGE_CHARS,
    "sends_per_minute": CHAT_SENDS_PER_MINUTE,
    "active_turns_per_user": CHAT_MAX_ACTIVE_TURNS_PER_USER,
    "system_prompt_chars": 20_000,
    "images_per_message": CHAT_MAX_IMAGES_PER_MESSAGE,
    "uploads_per_minute": CHAT_UPLOADS_PER_MINUTE,
    # Importing conversations (chatapp.exchange), each limit named in the refusal: the file
    # uploaded (and any one JSON document, in a zip or not: it is parsed whole), what a zip may
    # unpack to and hold, and what one import may add. A file past one imports nothing.
    "import_bytes": int(CHAT_MAX_IMPORT_MB * 1_000_000),
    "import_unzipped_bytes": 200_000_000,
    "import_zip_entries": 10_000,
    "import_conversations": 10_000,
    "import_messages": 100_000,
}

# Uploaded images (chatapp.attachments.images): caps on what is decoded, each named in its error.
CHAT_IMAGE_LIMITS = {
    "max_bytes": int(CHAT_MAX_IMAGE_MB * 1_000_000),
    "max_pixels": int(CHAT_MAX_IMAGE_MEGAPIXELS * 1_000_000),
    # PNG, WEBP and GIF decode at full size (JPEG at a reduced scale when it will be scaled
    # down): this bounds the memory one upload can take (4 bytes a pixel).
    "lossless_max_pixels": 50_000_000,
    # Images uploaded but never sent in a message are removed after this long.
    "unsent_ttl_hours": 24,
}
# Per route: the longest side a model gets (bigger images are scaled down) and the budget of
# one whole request, images base64-encoded. Routes not listed take "default".
CHAT_IMAGE_ROUTES: dict[str, dict[str, int]] = {
    "default": {"longest_side": CHAT_IMAGE_LONGEST_SIDE, "request_bytes": 20_000_000},
    "aimlapi": {"request_bytes": int(AIMLAPI_MAX_REQUEST_MB * 1_000_000)},
    # docs/PROTOCOLS.md §3: inline data up to 100 MB per request (base64).
    "gemini": {"request_bytes": 100_000_000},
}
# Form bodies Django reads into memory: a message at its longest (4 UTF-8 bytes a character)
# and the settings panel's fields, at least Django's default; bigger is refused with a message
# naming the limit (web/views/errors.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = max(2_621_440, CHAT_MAX_MESSAGE_CHARS * 4 + 1_000_000)
# Request bodies above this are refused before they are read (chatapp.web.middleware): an upload
# plus room for the multipart envelope and the other form fields.
CHAT_MAX_REQUEST_BODY_BYTES = CHAT_IMAGE_LIMITS["max_bytes"] + 1_000_000
# The import page's upload (chatapp.exchange), with the same room for its envelope.
CHAT_MAX_IMPORT_BODY_BYTES = CHAT_LIMITS["import_bytes"] + 1_000_000

# The generation run (docs/ARCHITECTURE.md, "The flow of one turn").
CHAT_RUN = {
    # Frames go out as text arrives while this process receives fewer than
    # `unpaced_chunks_per_second` chunks from upstreams; above that each stream's frames are
    # coalesced, up to one per `max_frame_interval` at twice that rate (turns/pacing.py).
    "unpaced_chunks_per_second": CHAT_STREAM_UNPACED_CHUNKS_PER_SECOND,
    "max_frame_interval": 1.0 / CHAT_STREAM_FRAMES_PER_SECOND,
    # However idle the process, no stream sends more frames a second than this, after a burst
    # of three (turns/pacing.py, FrameBudget); 0: no such cap. A page asks for its own rate.
    "min_frame_interval": (
        1.0 / CHAT_STREAM_PEAK_FRAMES_PER_SECOND if CHAT_STREAM_PEAK_FRAMES_PER_SECOND > 0 else 0.0
    ),
    # Partial text is checkpointed to the database at most once per interval: without Redis,
    # what a process that dies can lose (with Redis, nothing shown: turns.published).
    "checkpoint_interval": CHAT_CHECKPOINT_SECONDS,
    # A watcher joining a running answer waits this long for the run's snapshot before it
    # falls back to the saved text (the run's worker may have died).
    "snapshot_timeout": 5.0,
    # Retries before the first token for 429 / 5xx / connection errors.
    "retry_attempts": 3,
    "retry_backoff": 0.5,
    "retry_max_wait": 8.0,
    # Liveness of the worker processes that own runs; a run whose worker has not been seen
    # for `worker_stale_after` seconds is marked interrupted by any other worker.
    "heartbeat_interval": CHAT_WORKER_HEARTBEAT_SECONDS,
    "worker_stale_after": CHAT_WORKER_HEARTBEAT_SECONDS * 3,
}

# SSE: a comment at least this often keeps proxies from closing an idle stream.
SSE_HEARTBEAT_SECONDS = 10.0

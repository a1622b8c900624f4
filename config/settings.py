"""Settings for Do It Online Assist, read from the environment with safe embedded defaults.

Every variable is documented in `.env.example` and the README. With nothing set, the
project runs as a development demo: SQLite in the project folder and the in-memory
channel layer. `DATABASE_URL` switches to PostgreSQL and `REDIS_URL` to channels_redis.
"""

import datetime
import os
import urllib.parse
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# Named so that production start-up can refuse it (below).
DEVELOPMENT_SECRET_KEY = "django-insecure-development-only-do-not-deploy"  # noqa: S105


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def web_origin(value: str, *, setting: str) -> str:
    """`value` as browsers send it in `Origin`: scheme://host[:port], in lower case, without
    the scheme's default port. Anything else (a path, a wildcard) stops start-up: the CORS
    headers compare origins exactly, so a near miss would fail silently."""
    parsed = urllib.parse.urlsplit(value)
    try:
        port = parsed.port
    except ValueError:
        port = -1
    if (
        parsed.scheme not in ("http", "https")
        or not parsed.hostname
        or parsed.hostname.startswith(".")  # every subdomain, to Channels; nothing, to CORS
        or "*" in parsed.hostname
        or port == -1
        or parsed.path not in ("", "/")
        or parsed.query
        or parsed.fragment
        or parsed.username is not None
    ):
        raise ImproperlyConfigured(f"{setting}: {value!r} is not an origin like https://www.council.gov.uk")
    host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
    default_port = {"http": 80, "https": 443}[parsed.scheme]
    return f"{parsed.scheme}://{host}" + (f":{port}" if port not in (None, default_port) else "")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}.")
    return number


DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS")
if DEBUG:
    SECRET_KEY = SECRET_KEY or DEVELOPMENT_SECRET_KEY
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["127.0.0.1", "localhost", "[::1]"]
else:
    # Refuse to start rather than run production on a guessable key or accept any Host.
    if not SECRET_KEY or SECRET_KEY == DEVELOPMENT_SECRET_KEY:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set to a long random value when DJANGO_DEBUG is off "
            "(or set DJANGO_DEBUG=1 for local development)."
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "DJANGO_ALLOWED_HOSTS must list this site's host names (comma-separated) when DJANGO_DEBUG is off."
        )
    # Channels checks a socket's Origin against these hosts: a wildcard would let any site open
    # the console's and the kiosks' sockets in a signed-in browser.
    if "*" in ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "DJANGO_ALLOWED_HOSTS must name this site's hosts, not '*', when DJANGO_DEBUG is off: "
            "websocket origins are checked against them."
        )

CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.forms",
    "channels",
    "corsheaders",
    "csp",
    "axes",
    "kiosk",
    "chat",
    "agents_console",
]

MIDDLEWARE = [
    # First, so that every response it covers gets its headers.
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After sessions and auth: it flushes a wiped visit's session and refuses pages a kiosk
    # may not open.
    "kiosk.middleware.KioskMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it answers locked-out sign-ins.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "config.context_processors.council",
            ],
            "libraries": {"clock": "config.clock"},
        },
    },
]

# --- Database --------------------------------------------------------------------------
# No DATABASE_URL: SQLite in the project folder. IMMEDIATE transactions and a busy timeout
# let several processes share the file without "database is locked" on every write. WAL is
# deliberately off: the browser tests' forked live server then read stale snapshots.
SQLITE_OPTIONS = {"transaction_mode": "IMMEDIATE", "timeout": 20}
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DJANGO_DB_CONN_MAX_AGE", "0")),
        conn_health_checks=not env_bool("DJANGO_DB_POOL", True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(SQLITE_OPTIONS)
elif env_bool("DJANGO_DB_POOL", True) and DATABASES["default"]["CONN_MAX_AGE"] == 0:
    # Consumers reach the database from worker threads many times a second; a pool saves a
    # new PostgreSQL connection per frame (measured in docs/performance.md).
    # Warm enough for the worker threads of one process (cores + 4) and a few HTTP requests.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("DJANGO_DB_POOL_MIN_SIZE", 8),
        "max_size": env_int("DJANGO_DB_POOL_MAX_SIZE", 20),
        "timeout": 10,
    }

# PostgreSQL sessions a server process keeps for storing chat messages from its event loop
# (config.async_db), besides the pool; statements beyond them wait for one (with none, every
# chat message would wait for ever).
DB_ASYNC_CONNECTIONS = env_int("DJANGO_DB_ASYNC_CONNECTIONS", 10, minimum=1)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer -----------------------------------------------------------------------
# The database is the source of truth; the layer is transport only. Both Redis layers are
# supported. The pub/sub layer is the default: measured on these machines it carried two to
# three times the messages of the core layer and kept delivering under overload, where the
# core layer silently drops once a channel holds `capacity` messages (docs/performance.md).
REDIS_URL = os.environ.get("REDIS_URL", "")
CHANNEL_LAYER_KIND = os.environ.get("CHANNEL_LAYER", "pubsub" if REDIS_URL else "memory")
CHANNEL_LAYER_PREFIX = os.environ.get("CHANNEL_LAYER_PREFIX", "dioa")
# A console tab may stay open for a whole working day, so group membership must outlive it.
WEBSOCKET_MAX_AGE_SECONDS = 12 * 60 * 60

if CHANNEL_LAYER_KIND == "memory":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "config.layers.SweepingInMemoryChannelLayer",
            "CONFIG": {"capacity": 1000, "expiry": 60, "group_expiry": WEBSOCKET_MAX_AGE_SECONDS},
        }
    }
elif not REDIS_URL:
    raise ImproperlyConfigured(f"CHANNEL_LAYER={CHANNEL_LAYER_KIND} needs REDIS_URL.")
elif CHANNEL_LAYER_KIND == "core":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8's defaults (5 s socket timeout, 100-connection pool that fails at
                # once) kill idle consumers and bursts of joins; see docs/architecture.md.
                "hosts": [
                    {"address": url, "socket_timeout": 30, "max_connections": 5000} for url in REDIS_URL.split(",")
                ],
                "prefix": CHANNEL_LAYER_PREFIX,
                # A busy conversation group must not drop a burst; 1,000 queued events per
                # consumer is far above what one person's socket receives in `expiry` seconds.
                "capacity": 1000,
                "expiry": 60,
                "group_expiry": WEBSOCKET_MAX_AGE_SECONDS,
            },
        }
    }
elif CHANNEL_LAYER_KIND == "pubsub":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": url} for url in REDIS_URL.split(",")],
                "prefix": CHANNEL_LAYER_PREFIX,
            },
        }
    }
else:
    raise ImproperlyConfigured("CHANNEL_LAYER must be one of memory, core, pubsub.")

# --- Auth ------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # Refuses sign-in after repeated failures for the same name from the same address.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("DJANGO_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env_int("DJANGO_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "agents_console:home"
LOGOUT_REDIRECT_URL = "login"

# --- Internationalisation ----------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Europe/London"
USE_I18N = True
USE_TZ = True

# --- Static files ----------------------------------------------------------------------------
# Front-end packages come from npm at set-up time; `make assets` compiles the council's
# GOV.UK Frontend build into build/static. Nothing comes from a CDN.
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "config" / "static", BASE_DIR / "build" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- Security --------------------------------------------------------------------------------
# One switch turns on everything that only works behind HTTPS.
HTTPS_ONLY = env_bool("DJANGO_HTTPS", False)
SESSION_COOKIE_SECURE = HTTPS_ONLY
CSRF_COOKIE_SECURE = HTTPS_ONLY
SECURE_SSL_REDIRECT = HTTPS_ONLY
SECURE_HSTS_SECONDS = 31536000 if HTTPS_ONLY else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS_ONLY
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS_ONLY else None
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        # Inline scripts only with the per-response nonce (GOV.UK's one-line
        # "govuk-frontend-supported" class switch); no inline handlers anywhere.
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        # CSP Level 3 lets 'self' match ws:/wss: on the same host, which is all we need.
        "connect-src": [SELF],
        "frame-ancestors": ["'none'"],
        "form-action": [SELF],
        "base-uri": [SELF],
        "object-src": ["'none'"],
    }
}

# --- Email --------------------------------------------------------------------------------
# Development prints mail; a deployment sends it (EMAIL_HOST…). Printing it there would write
# every resident's transcript, personal data, into the server's logs instead of sending it.
EMAIL_BACKEND = os.environ.get(
    "DJANGO_EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
# Seconds a mail server may take to answer before sending gives up (and is logged).
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "do-it-online@millbrook.example.gov.uk")

# --- Product settings -----------------------------------------------------------------------
COUNCIL_NAME = os.environ.get("COUNCIL_NAME", "Millbrook District Council")


# Origins (scheme://host[:port]) of other council sites allowed to embed the chat widget.
# Co-browse: mask the value of every input, not only passwords, card fields and anything
# marked data-private (which are always masked).
COBROWSE_MASK_ALL_INPUTS = env_bool("COBROWSE_MASK_ALL_INPUTS", False)
# The kiosk's "Are you still there?" countdown before the privacy wipe (the idle time before
# it is set per kiosk in the console).
KIOSK_IDLE_WARNING_SECONDS = env_int("KIOSK_IDLE_WARNING_SECONDS", 30)
CHAT_WIDGET_ORIGINS = [web_origin(value, setting="CHAT_WIDGET_ORIGINS") for value in env_list("CHAT_WIDGET_ORIGINS")]
# Those sites read the widget's configuration and transcript across origins: CORS on just
# those paths, never with credentials (the widget's secret travels in the request body).
# Static files (the widget's module and styles) are public: WhiteNoise serves them to any
# origin with `Access-Control-Allow-Origin: *`, which module scripts need.
CORS_ALLOWED_ORIGINS = CHAT_WIDGET_ORIGINS
CORS_URLS_REGEX = r"^/chat/widget/"
CORS_ALLOW_CREDENTIALS = False
# The transcript's file name travels in this header, which scripts cannot read cross-origin
# unless it is exposed.
CORS_EXPOSE_HEADERS = ["Content-Disposition"]
# How long a resident may still read, rate and download an ended conversation.
CHAT_TOKEN_TTL_MINUTES = env_int("CHAT_TOKEN_TTL_MINUTES", 60)
# A conversation nobody accepted in this time ends, and the resident is offered a call back.
CHAT_WAITING_TIMEOUT_MINUTES = env_int("CHAT_WAITING_TIMEOUT_MINUTES", 30)
# A conversation whose resident has had no connection for this long is abandoned and ends.
CHAT_ABANDONED_TIMEOUT_MINUTES = env_int("CHAT_ABANDONED_TIMEOUT_MINUTES", 10)
# Estimated wait per place in the queue before there is enough history to measure it.
CHAT_DEFAULT_WAIT_MINUTES = env_int("CHAT_DEFAULT_WAIT_MINUTES", 3)
# Abuse limits that hold across every server process (counted in the database).
CHAT_STARTS_PER_ADDRESS_PER_HOUR = env_int("CHAT_STARTS_PER_ADDRESS_PER_HOUR", 10)
# Screen-sharing codes a network address may ask for in an hour (not kiosks).
COBROWSE_CODES_PER_ADDRESS_PER_HOUR = env_int("COBROWSE_CODES_PER_ADDRESS_PER_HOUR", 10)
# Wrong screen-sharing codes a helper may type in an hour; then no code works for them.
COBROWSE_CODE_MISSES_PER_HELPER_PER_HOUR = env_int("COBROWSE_CODE_MISSES_PER_HELPER_PER_HOUR", 10)
# Kiosk pairing codes a network address may have waiting: each is listed on the Kiosks page.
KIOSK_PAIRINGS_PER_ADDRESS_PER_HOUR = env_int("KIOSK_PAIRINGS_PER_ADDRESS_PER_HOUR", 20)
CHAT_MESSAGES_PER_MINUTE = env_int("CHAT_MESSAGES_PER_MINUTE", 20)
# Personal data is kept no longer than necessary: this many days after a conversation ends
# (or a call back is done) its transcript, notes and the resident's details are deleted;
# the anonymous rest stays for management information.
CHAT_RETENTION_DAYS = env_int("CHAT_RETENTION_DAYS", 90, minimum=1)
# Routes the benchmark's baseline relay (bench/relay.py). Benchmarks only, never production.
BENCH_RELAY = env_bool("BENCH_RELAY", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
FORM_RENDERER = "config.forms.GovukFormRenderer"

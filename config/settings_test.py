"""Test settings: the project's settings with fast password hashing and plain static storage."""

import os
import uuid

os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-" + "x" * 40)
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
# No PostgreSQL pool in the test process: every async test and every async_to_sync call runs
# its own event loop with its own worker threads, and a pooled connection left in a thread that
# ends with its loop is never handed back, so a long run exhausts the pool (seen as minutes of
# 10-second waits in the fuzz tests). Servers the tests start get DJANGO_DB_POOL=1 back (see
# tests/servers.py), so the pooled configuration is still what the browser and two-process
# tests run on.
os.environ.setdefault("DJANGO_DB_POOL", "0")
# The servers tests start keep the mail they would send (the test process's own is pytest-django's).
os.environ.setdefault("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
# Each test run gets its own channel-layer namespace on a shared Redis, and each of its
# pytest-xdist workers a part of it (a worker inherits the environment of the process that
# started it; a server a worker starts is handed the worker's whole prefix).
_prefix = os.environ.setdefault("CHANNEL_LAYER_PREFIX", f"dioa-test-{uuid.uuid4().hex[:8]}")
_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker and not _prefix.endswith(f"-{_worker}"):
    os.environ["CHANNEL_LAYER_PREFIX"] = f"{_prefix}-{_worker}"

from config.settings import *  # noqa: E402, F403
from config.settings import BASE_DIR, DATABASES, STORAGES  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
WHITENOISE_USE_FINDERS = True

# The browser tests' live server runs in another process, which finds the test database by
# its TEST NAME: a file for SQLite (never the in-memory default), Django's usual name else.
_database = DATABASES["default"]
if _database["ENGINE"] == "django.db.backends.sqlite3":
    _database["TEST"] = {"NAME": str(BASE_DIR / "test-db.sqlite3")}
else:
    _database["TEST"] = {"NAME": f"test_{_database['NAME']}"}
    # Django's backend, emptied between tests by DELETE rather than TRUNCATE (40x quicker).
    _database["ENGINE"] = "tests.postgresql"

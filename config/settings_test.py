"""Test settings: the project's settings with fast password hashing and plain static storage."""

import os
import uuid

os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-" + "x" * 40)
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
# Each test run gets its own channel-layer namespace on a shared Redis.
os.environ.setdefault("CHANNEL_LAYER_PREFIX", f"dioa-test-{uuid.uuid4().hex[:8]}")

from config.settings import *  # noqa: F403
from config.settings import BASE_DIR, DATABASES, STORAGES

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

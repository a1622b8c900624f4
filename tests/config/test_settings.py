"""Settings come from the environment, and production refuses unsafe defaults."""

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.settings import BASE_DIR, web_origin


def load_settings(**env):
    """Import the settings in a fresh interpreter with exactly `env` set, return its output."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "DATABASE_", "REDIS_"))}
    clean.pop("CHANNEL_LAYER", None)
    clean.update(env)
    code = (
        "import config.settings as s, json;"
        "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'],"
        " 'layer': s.CHANNEL_LAYERS['default']['BACKEND'], 'debug': s.DEBUG,"
        " 'pool': s.DATABASES['default'].get('OPTIONS', {}).get('pool'), 'email': s.EMAIL_BACKEND,"
        " 'config': {k: v for k, v in s.CHANNEL_LAYERS['default'].get('CONFIG', {}).items() if k != 'hosts'}}))"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, env=clean, capture_output=True, text=True)


def test_defaults_are_sqlite_and_the_in_memory_layer_in_development():
    result = load_settings(DJANGO_DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert '"engine": "django.db.backends.sqlite3"' in result.stdout
    assert '"layer": "config.layers.SweepingInMemoryChannelLayer"' in result.stdout


def test_mail_is_printed_in_development_and_sent_in_a_deployment():
    development = load_settings(DJANGO_DEBUG="1")
    deployment = load_settings(DJANGO_SECRET_KEY="k" * 50, DJANGO_ALLOWED_HOSTS="council.example")
    assert '"email": "django.core.mail.backends.console.EmailBackend"' in development.stdout, development.stderr
    # Never the console there: it would write residents' transcripts into the server's logs.
    assert '"email": "django.core.mail.backends.smtp.EmailBackend"' in deployment.stdout, deployment.stderr


def test_database_url_switches_to_postgresql_and_redis_url_to_the_redis_layer():
    result = load_settings(
        DJANGO_DEBUG="1", DATABASE_URL="postgres://postgres@127.0.0.1:5432/test", REDIS_URL="redis://127.0.0.1:6379/0"
    )
    assert result.returncode == 0, result.stderr
    assert '"engine": "django.db.backends.postgresql"' in result.stdout
    assert '"layer": "channels_redis.pubsub.RedisPubSubChannelLayer"' in result.stdout
    # Deployments pool PostgreSQL connections by default (the test process alone does not).
    assert '"pool": {"min_size": 8, "max_size": 20, "timeout": 10}' in result.stdout


def test_the_core_redis_layer_has_deliberate_capacity_and_expiry():
    result = load_settings(DJANGO_DEBUG="1", REDIS_URL="redis://127.0.0.1:6379/0", CHANNEL_LAYER="core")
    assert result.returncode == 0, result.stderr
    assert '"layer": "channels_redis.core.RedisChannelLayer"' in result.stdout
    assert '"capacity": 1000' in result.stdout
    assert '"group_expiry": 43200' in result.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_ALLOWED_HOSTS": "council.example"}, "DJANGO_SECRET_KEY must be set"),
        (
            {"DJANGO_SECRET_KEY": "django-insecure-development-only-do-not-deploy", "DJANGO_ALLOWED_HOSTS": "x"},
            "DJANGO_SECRET_KEY must be set",
        ),
        ({"DJANGO_SECRET_KEY": "a-long-random-production-key-" + "z" * 30}, "DJANGO_ALLOWED_HOSTS must list"),
        (
            {
                "DJANGO_SECRET_KEY": "a-long-random-production-key-" + "z" * 30,
                "DJANGO_ALLOWED_HOSTS": "council.example,*",
            },
            "DJANGO_ALLOWED_HOSTS must name this site's hosts, not '*'",
        ),
        ({"DJANGO_DEBUG": "1", "CHANNEL_LAYER": "core"}, "CHANNEL_LAYER=core needs REDIS_URL"),
        ({"DJANGO_DEBUG": "1", "DJANGO_DB_ASYNC_CONNECTIONS": "0"}, "DJANGO_DB_ASYNC_CONNECTIONS must be at least 1"),
        ({"DJANGO_DEBUG": "1", "DJANGO_DB_ASYNC_CONNECTIONS": "ten"}, "must be a whole number"),
        ({"DJANGO_DEBUG": "1", "CHAT_WIDGET_ORIGINS": "*"}, "CHAT_WIDGET_ORIGINS: '*' is not an origin"),
    ],
)
def test_unsafe_or_incomplete_settings_stop_start_up_with_a_clear_message(env, message):
    result = load_settings(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_production_settings_start_with_a_real_key_and_hosts():
    result = load_settings(
        DJANGO_SECRET_KEY="a-long-random-production-key-" + "z" * 30, DJANGO_ALLOWED_HOSTS="council.example"
    )
    assert result.returncode == 0, result.stderr
    assert '"debug": false' in result.stdout


def run_manage(*args, **env):
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "DATABASE_", "REDIS_"))}
    clean.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=clean, capture_output=True, text=True)


def test_management_commands_run_in_a_checkout_with_nothing_configured():
    result = run_manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout


def test_a_configured_deployment_keeps_its_guard_for_management_commands():
    result = run_manage("check", DJANGO_SECRET_KEY="a-long-random-production-key-" + "z" * 30)
    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS must list" in result.stderr


@pytest.mark.parametrize(
    ("value", "origin"),
    [
        ("https://www.council.gov.uk", "https://www.council.gov.uk"),
        ("HTTPS://WWW.Council.gov.uk/", "https://www.council.gov.uk"),
        ("https://www.council.gov.uk:443", "https://www.council.gov.uk"),
        ("http://localhost:8000", "http://localhost:8000"),
        ("http://[::1]:80", "http://[::1]"),
    ],
)
def test_widget_origins_are_written_as_browsers_send_them(value, origin):
    assert web_origin(value, setting="CHAT_WIDGET_ORIGINS") == origin


@pytest.mark.parametrize(
    "value",
    [
        "*",
        "www.council.gov.uk",
        "https://.council.gov.uk",
        "https://*.council.gov.uk",
        "https://council.gov.uk/chat",
        "ftp://council.gov.uk",
        "https://council.gov.uk:http",
        "https://user@council.gov.uk",
        "https://council.gov.uk/?a=1",
    ],
)
def test_anything_but_an_origin_stops_start_up(value):
    with pytest.raises(ImproperlyConfigured, match="is not an origin"):
        web_origin(value, setting="CHAT_WIDGET_ORIGINS")

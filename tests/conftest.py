"""Shared fixtures: people in each role, a catalogue service, broadcast capture, real services."""

import gc
import importlib
import os
from dataclasses import dataclass, field
from typing import Any

import pytest
from asgiref.sync import SyncToAsync
from django.contrib.auth.models import Group
from django.db import connections

from agents_console.roles import Role
from kiosk import services as kiosk_services
from kiosk.models import Service, ServiceCategory

IN_CI = os.environ.get("CI") == "true"


def pytest_sessionfinish(session, exitstatus):
    """Under CI a skipped test is a failure: nothing the suite promises may silently not run."""
    if not IN_CI:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.write_line(f"CI=true: {len(skipped)} test(s) skipped; failing the run.", red=True)
        session.exitstatus = 1


def need(condition: bool, reason: str) -> None:
    """Skip when a real service is missing; under CI=true, fail instead."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def close_async_thread_connections(django_db_setup, django_db_blocker):
    """Close the connections async tests opened in worker threads (asgiref's one sync thread,
    whose connection outlives every test, among them), and the connection pool, before the
    test database is dropped (PostgreSQL refuses to drop a database with a session open)."""
    yield
    # Connections only garbage still holds (a finished thread's, in a reference cycle) are
    # closed when collected; config.asgi widens the collector's young generation for the
    # server, which makes full collections rare in this process too.
    gc.collect()

    SyncToAsync.single_thread_executor.submit(connections.close_all).result()
    # Consumers' worker threads borrow from the PostgreSQL pool, which keeps connections
    # open until it is closed.
    for connection in connections.all():
        if getattr(connection, "pool", None) is not None:
            connection.close_pool()


@pytest.fixture
def roles(db):
    """The role groups; transactional tests flush what the data migration created."""
    from django.apps import apps

    importlib.import_module("agents_console.migrations.0002_roles").create_roles(apps, None)


@pytest.fixture
def make_user(django_user_model, roles):
    def make(username: str, role: Role | None = None, **extra):
        extra.setdefault("first_name", username.title())
        user = django_user_model.objects.create_user(username=username, password=f"{username}-password", **extra)
        if role is not None:
            user.groups.add(Group.objects.get(name=role.value))
        return user

    return make


@pytest.fixture
def advisor(make_user):
    return make_user("alex", Role.ADVISOR)


@pytest.fixture
def other_advisor(make_user):
    return make_user("bea", Role.ADVISOR)


@pytest.fixture
def volunteer(make_user):
    return make_user("vic", Role.VOLUNTEER)


@pytest.fixture
def supervisor(make_user):
    return make_user("sam", Role.SUPERVISOR)


@pytest.fixture
def resident_account(make_user):
    """A signed-in account with no console role (a member of the public, say)."""
    return make_user("ria")


@pytest.fixture
def kiosk_credential(supervisor):
    """The device credential of an enrolled kiosk (approved by a supervisor), as its cookie holds it."""
    device, secret = kiosk_services.device_begin_pairing()
    kiosk_services.device_approve(
        pairing_code=device.pairing_code, name="Kiosk 1", location="Library", approved_by=supervisor
    )
    return kiosk_services.device_claim_credential(pairing_secret=secret)[1]


@pytest.fixture
def service(db):
    category = ServiceCategory.objects.create(name="Bins and recycling", slug="bins")
    return Service.objects.create(
        name="Report a missed bin collection",
        slug="report-missed-bin",
        category=category,
        url="/services/report-missed-bin/",
        kiosk_allowed=True,
    )


@dataclass
class Broadcasts:
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def groups(self, event_type: str) -> list[str]:
        return [group for group, event in self.sent if event["type"] == event_type]

    def events(self, event_type: str) -> list[dict[str, Any]]:
        return [event for _group, event in self.sent if event["type"] == event_type]


@pytest.fixture
def broadcasts(monkeypatch):
    """Every group_send the code under test makes, in order (Zulip's capture_send_event_calls)."""
    captured = Broadcasts()
    monkeypatch.setattr("config.realtime.group_send", lambda group, event: captured.sent.append((group, event)))
    return captured


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL", "")
    need(bool(url), "REDIS_URL is not set (the services pass of `make test` sets it)")
    return url


@pytest.fixture
def postgres():
    need(
        connections["default"].vendor == "postgresql",
        "DATABASE_URL does not point at PostgreSQL (the services pass of `make test` sets it)",
    )


@pytest.fixture(autouse=True)
def helpers_online(request, monkeypatch):
    """A helper is online unless a test asks for the real check (`real_availability`).

    Most tests are about something else; those about availability open real console
    connections instead.
    """
    if "real_availability" in request.keywords:
        return
    monkeypatch.setattr("chat.availability._helper_available", lambda: True)

"""Staff roles: advisor, volunteer and supervisor, held as Django groups."""

import functools
import logging
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger(__name__)


class Role(models.TextChoices):
    SUPERVISOR = "supervisor", _("Supervisor")
    ADVISOR = "advisor", _("Advisor")
    VOLUNTEER = "volunteer", _("Drop-in volunteer")


# When someone holds several roles, the widest one counts.
ROLE_PRECEDENCE = [Role.SUPERVISOR, Role.ADVISOR, Role.VOLUNTEER]


def helper_role(user) -> Role | None:
    """The console role of `user`, or None for anyone who may not use the console."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.SUPERVISOR
    names = set(user.groups.values_list("name", flat=True))
    for role in ROLE_PRECEDENCE:
        if role.value in names:
            return role
    return None


def helper_role_now(session_key: str | None) -> Role | None:
    """The console role a socket's helper has now (it was read when the socket opened): that
    of whoever a request with the socket's session would be signed in as now, so none once
    they have signed out, the session has expired, their password was changed elsewhere or
    they were deactivated (Django's `get_user` decides, as for every page)."""
    if not session_key:
        return None
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return helper_role(get_user(request))


def helper_required(view):
    """Lets in signed-in staff with a console role; others sign in or get 403, and it is logged."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        request.helper_role = helper_role(request.user)
        if request.helper_role is None:
            logger.warning("user %s denied %s", request.user.pk, request.path)
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def supervisor_required(view):
    """Like `helper_required`, then only supervisors: others get 403, logged."""

    @helper_required
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.helper_role != Role.SUPERVISOR:
            logger.warning("user %s (%s) denied %s", request.user.pk, request.helper_role, request.path)
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper

"""Staff roles: advisor, volunteer and supervisor, held as Django groups."""

import functools
import logging

from django.contrib.auth import get_user_model
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import models
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


def helper_role_now(user_id: int, session) -> Role | None:
    """The console role a socket's helper has now (it was read when the socket opened): none
    once they have signed out (the socket's `session` is gone), been deactivated or lost it."""
    if not session.session_key or not session.exists(session.session_key):
        return None
    return helper_role(get_user_model().objects.filter(pk=user_id).first())


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

"""User-facing errors of the advisor console."""

from django.utils.translation import gettext_lazy as _

ERRORS = {
    "wrap_up_not_ended": _("End the conversation before logging what was done."),
    "wrap_up_not_yours": _("Only the helper who held this conversation, or a supervisor, can log it."),
    "wrap_up_exists": _("What was done in this conversation has already been logged."),
    "service_required": _("Select at least one service."),
}

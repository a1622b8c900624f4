"""The advisor console's pages: the live workspace, the wrap-up form and help without a chat."""

import logging

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from agents_console.forms import KioskApproveForm, WalkInForm, WrapUpForm
from agents_console.models import HelperProfile
from agents_console.roles import Role, helper_required, supervisor_required
from agents_console.selectors import conversation_list_awaiting_wrap_up, guidance_payload
from agents_console.services import assisted_transaction_create
from chat.models import Conversation
from kiosk import selectors as kiosk_selectors
from kiosk import services as kiosk_services
from kiosk.models import KioskDevice

logger = logging.getLogger(__name__)


# The co-browse viewer rebuilds the resident's page (its <style> elements and style
# attributes) inside a sandboxed frame that inherits this page's policy; scripts stay
# nonce-only.
@csp_update({"style-src": [UNSAFE_INLINE]})
@helper_required
def console_home(request):
    context = {
        "role": request.helper_role,
        "awaiting_wrap_up": conversation_list_awaiting_wrap_up(helper_id=request.user.pk),
        "console_config": {
            "socketPath": "/ws/console/",
            "helperId": request.user.pk,
            "role": request.helper_role.value,
            "wrapUpUrlTemplate": reverse("agents_console:wrap_up", args=[0]).replace("/0/", "/{id}/"),
            "guidance": guidance_payload(),
            "abandonedMinutes": settings.CHAT_ABANDONED_TIMEOUT_MINUTES,
            "timeZone": settings.TIME_ZONE,
        },
        "presence_choices": HelperProfile.Status.choices,
    }
    return render(request, "agents_console/console.html", context)


@helper_required
def log_help(request):
    """Log help given without a chat: a walk-in at reception or a drop-in day."""
    if request.method == "POST":
        form = WalkInForm(request.POST)
        if form.is_valid():
            assisted_transaction_create(helper=request.user, **form.cleaned_data)
            messages.success(request, _("What you did has been logged. Thank you."))
            return redirect("agents_console:home")
    else:
        form = WalkInForm()
    context = {
        "form": form,
        "form_id": "log-help-form",
        "heading": _("Log help without a chat"),
        "lead": _("For a resident you helped in person at reception or on a drop-in day."),
    }
    return render(request, "agents_console/help_form_page.html", context)


def _elapsed_minutes(conversation: Conversation) -> int:
    start = conversation.assigned_at or conversation.created_at
    end = conversation.ended_at or timezone.now()
    return max(1, round((end - start).total_seconds() / 60))


@helper_required
def wrap_up(request, conversation_id: int):
    conversation = get_object_or_404(Conversation.objects.select_related("service"), pk=conversation_id)
    if conversation.assigned_helper_id != request.user.pk and request.helper_role != Role.SUPERVISOR:
        logger.warning("user %s denied the wrap-up of conversation %s", request.user.pk, conversation.pk)
        raise PermissionDenied
    if request.method == "POST":
        form = WrapUpForm(request.POST)
        if form.is_valid():
            try:
                assisted_transaction_create(helper=request.user, conversation=conversation, **form.cleaned_data)
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, _("What you did has been logged. Thank you."))
                return redirect("agents_console:home")
    else:
        initial = {"minutes_spent": _elapsed_minutes(conversation)}
        if conversation.service_id:
            initial["services"] = [conversation.service_id]
        form = WrapUpForm(initial=initial)
    context = {
        "form": form,
        "form_id": "wrap-up-form",
        "heading": _("Log what was done"),
        "caption": _("Conversation %(id)s · %(channel)s")
        % {"id": conversation.pk, "channel": conversation.get_channel_display()},
    }
    return render(request, "agents_console/help_form_page.html", context)


@supervisor_required
def kiosk_list(request):
    """Every kiosk with its live state; the ones waiting for approval first to catch the eye."""
    devices = list(kiosk_selectors.device_list())
    rows = [{"device": device, "payload": kiosk_selectors.device_payload(device)} for device in devices]
    context = {
        "rows": rows,
        "pending": [row for row in rows if row["device"].status == KioskDevice.Status.PENDING],
        "kiosks_config": {
            "socketPath": "/ws/console/kiosks/",
            "offlineAfterSeconds": 90,
            "timeZone": settings.TIME_ZONE,
        },
    }
    return render(request, "agents_console/kiosks.html", context)


@supervisor_required
def kiosk_approve(request):
    """Enrol a kiosk by the pairing code on its screen (its QR code opens this page)."""
    if request.method == "POST":
        form = KioskApproveForm(request.POST)
        if form.is_valid():
            try:
                device = kiosk_services.device_approve(**form.cleaned_data, approved_by=request.user)
            except ValidationError as error:
                form.add_error("pairing_code", error)
            else:
                messages.success(
                    request,
                    _("%(name)s is enrolled. Its screen will show the services in a moment.") % {"name": device.name},
                )
                return redirect("agents_console:kiosk_list")
    else:
        form = KioskApproveForm(initial={"pairing_code": request.GET.get("code", "")[:16]})
    context = {
        "form": form,
        "form_id": "kiosk-approve-form",
        "heading": _("Approve a kiosk"),
        "lead": _("Check the code matches the one on the kiosk's screen in front of you."),
        "submit_label": _("Approve this kiosk"),
    }
    return render(request, "agents_console/help_form_page.html", context)


@require_POST
@supervisor_required
def kiosk_revoke(request, device_id: int):
    device = get_object_or_404(KioskDevice, pk=device_id)
    kiosk_services.device_revoke(device_id=device.pk, revoked_by=request.user)
    messages.success(request, _("%(name)s is revoked: its screen is back at the pairing code.") % {"name": device.name})
    return redirect("agents_console:kiosk_list")


@require_POST
@supervisor_required
def kiosk_wipe(request, device_id: int):
    device = get_object_or_404(KioskDevice, pk=device_id, status=KioskDevice.Status.ACTIVE)
    kiosk_services.device_request_wipe(device_id=device.pk, requested_by=request.user)
    messages.success(request, _("%(name)s is being cleared for the next resident.") % {"name": device.name})
    return redirect("agents_console:kiosk_list")

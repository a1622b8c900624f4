"""The demo council website, the kiosk's pairing screen and launcher, visits and hand-off links."""

import functools
import io
import json

import qrcode
import qrcode.image.svg
from django.core.exceptions import ValidationError
from django.http import HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.limits import client_address_hash
from kiosk import selectors, services
from kiosk.middleware import DEVICE_COOKIE, PAIRING_COOKIE, VISIT_COOKIE, set_device_cookie
from kiosk.models import KioskVisit

# A kiosk refused a pairing code asks again this often (pairing.js), until there is room.
PAIRING_RETRY_SECONDS = 60

# How the console's approval page is reached from the QR code on the pairing screen.
APPROVAL_PATH = "/console/kiosks/approve/"


def council_home(request):
    """A council's home page as residents meet it, carrying the chat widget."""
    return render(request, "kiosk/council_home.html", {"services": selectors.service_list_active()})


def qr_svg(data: str) -> str:
    """An inline SVG QR code: no image file, no network, crisp on any screen."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=12, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode()


@never_cache
@require_GET
def kiosk_home(request):
    """An enrolled kiosk's launcher; any other browser sees a pairing code to be approved."""
    if request.kiosk_device is not None:
        return render(
            request,
            "kiosk/kiosk_home.html",
            {"categories": selectors.service_category_list_for_kiosk(), "kiosk_shell_home": True},
        )

    pairing_secret = request.COOKIES.get(PAIRING_COOKIE, "")
    claimed = services.device_claim_credential(pairing_secret=pairing_secret)
    if claimed is not None:
        _device, credential = claimed
        response = redirect("kiosk:home")
        set_device_cookie(response, request, credential)
        response.delete_cookie(PAIRING_COOKIE, samesite="Strict")
        return response

    device = services.device_for_pairing_secret(pairing_secret)
    new_secret = None
    if device is None:
        try:
            device, new_secret = services.device_begin_pairing(
                address_hash=client_address_hash(request.META.get("REMOTE_ADDR"))
            )
        except ValidationError:
            response = render(
                request, "kiosk/pairing_refused.html", {"retry_seconds": PAIRING_RETRY_SECONDS}, status=429
            )
            response["Retry-After"] = str(PAIRING_RETRY_SECONDS)
            return response
    approval_url = request.build_absolute_uri(f"{APPROVAL_PATH}?code={device.pairing_code}")
    response = render(
        request,
        "kiosk/pairing.html",
        {"device": device, "qr_svg": qr_svg(approval_url), "approval_url": approval_url},
    )
    if new_secret:
        response.set_cookie(
            PAIRING_COOKIE, new_secret, samesite="Strict", secure=request.is_secure(), httponly=True, max_age=3600
        )
    if request.COOKIES.get(DEVICE_COOKIE):
        # A revoked or unknown credential: forget it, so the browser pairs afresh.
        response.delete_cookie(DEVICE_COOKIE, samesite="Strict")
    return response


@never_cache
@require_GET
def pairing_status(request):
    """Polled by the pairing screen: has a supervisor approved this kiosk yet?"""
    if request.kiosk_device is not None:
        return JsonResponse({"status": "enrolled"})
    device = services.device_for_pairing_secret(request.COOKIES.get(PAIRING_COOKIE, ""))
    if device is None:
        return JsonResponse({"status": "expired"})
    return JsonResponse({"status": "approved" if device.status == device.Status.ACTIVE else "pending"})


def kiosk_only(view):
    """Shell endpoints answer only an enrolled kiosk's browser."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.kiosk_device is None:
            return HttpResponseForbidden(_("Only an enrolled kiosk can do this."))
        return view(request, *args, **kwargs)

    return wrapped


@require_POST
@kiosk_only
def visit_start(request):
    """The first touch on the home screen starts a visit (the middleware sets its cookie)."""
    request.kiosk_visit = request.kiosk_visit or services.visit_start(request.kiosk_device)
    return JsonResponse({"visit": request.kiosk_visit.public_id})


FINISH_REASONS = {
    "finished": KioskVisit.EndReason.FINISHED,
    "idle": KioskVisit.EndReason.IDLE,
    "remote": KioskVisit.EndReason.REMOTE,
}


@require_POST
@kiosk_only
def visit_finish(request):
    """The privacy wipe: end the visit and its conversations, forget its session, cookies and
    storage, and tell the page to go home."""
    reason = FINISH_REASONS.get(request.POST.get("reason", ""), KioskVisit.EndReason.FINISHED)
    services.visit_end(device=request.kiosk_device, reason=reason)
    request.kiosk_visit = None
    request.session.flush()
    response = JsonResponse({"home": reverse("kiosk:home")})
    # Cookies other than the device credential are the visit's; storage and cache go too.
    for name in request.COOKIES:
        if name != DEVICE_COOKIE:
            response.delete_cookie(name, samesite="Strict" if name == VISIT_COOKIE else "Lax")
    response["Clear-Site-Data"] = '"cache", "storage"'
    return response


@require_POST
@kiosk_only
def handoff_create(request):
    """A QR code with a one-time, short-lived link to the current service on the resident's phone."""
    path = request.POST.get("path", "")
    with_conversation = request.POST.get("with_conversation") == "1"
    if not path.startswith("/") or path.startswith("/kiosk/") or not selectors.path_allowed_on_kiosk(path):
        return JsonResponse({"error": _("Only a council service can continue on a phone.")}, status=400)
    visit = request.kiosk_visit or services.visit_start(request.kiosk_device)
    request.kiosk_visit = visit
    token = services.handoff_create(visit=visit, path=path, with_conversation=with_conversation)
    url = request.build_absolute_uri(reverse("kiosk:handoff_open", args=[token]))
    return JsonResponse(
        {
            "qr_svg": qr_svg(url),
            "url": url,
            "minutes": int(services.HANDOFF_LIFETIME.total_seconds() // 60),
            "expires_at": (timezone.now() + services.HANDOFF_LIFETIME).isoformat(),
        }
    )


@never_cache
@require_http_methods(["GET", "POST"])
def handoff_open(request, token: str):
    """Opened on the resident's phone: works once, within a few minutes.

    Opening the link (GET) only asks; the resident's press (POST) uses it. Messaging apps and
    link previews fetch a link before anyone taps it, and that fetch must neither use the
    link up nor move the kiosk's chat to nowhere.
    """
    if request.kiosk_device is not None:
        return render(request, "kiosk/handoff_invalid.html", status=403)
    if request.method == "GET":
        if not services.handoff_usable(token):
            return render(request, "kiosk/handoff_invalid.html", status=410)
        return render(request, "kiosk/handoff_confirm.html")
    redeemed = services.handoff_redeem(token)
    if redeemed is None:
        return render(request, "kiosk/handoff_invalid.html", status=410)
    link, chat_token = redeemed
    return render(
        request,
        "kiosk/handoff_open.html",
        {"path": link.path, "chat_state": json.dumps({"token": chat_token}) if chat_token else ""},
    )

"""Recognises an enrolled kiosk's browser, keeps it to the kiosk services and tracks its visit."""

from django.shortcuts import render
from django.utils.cache import patch_cache_control

from kiosk import selectors, services

# The device credential: HttpOnly, so no script on any page can read or copy it.
DEVICE_COOKIE = "dioa_kiosk"
# The pending kiosk's pairing secret, until it collects its credential.
PAIRING_COOKIE = "dioa_kiosk_pairing"
# The current visit's public id. Scripts read it: a page left in the history by an earlier
# visit compares it with its own and hides itself (see kiosk/visit-guard in base.html).
VISIT_COOKIE = "dioa_visit"
# Ten years: a kiosk stays enrolled until a supervisor revokes it.
DEVICE_COOKIE_MAX_AGE = 10 * 365 * 24 * 3600


class KioskMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        device = services.device_authenticate(request.COOKIES.get(DEVICE_COOKIE, ""))
        request.kiosk_device = device
        request.kiosk_visit = None
        if device is None:
            return self.get_response(request)

        visit_cookie = request.COOKIES.get(VISIT_COOKIE, "")
        request.kiosk_visit = services.visit_current(device, visit_cookie)
        stale_visit = bool(visit_cookie) and request.kiosk_visit is None
        if stale_visit:
            # The visit was wiped (idle, remotely) while this browser still held it: nothing
            # kept for it in the session may reach the next resident.
            request.session.flush()

        if not selectors.path_allowed_on_kiosk(request.path):
            response = render(request, "kiosk/not_allowed.html", status=403)
        else:
            if request.kiosk_visit is None and not request.path.startswith(selectors.KIOSK_SHELL_PREFIXES):
                # Opening a service is a first touch.
                request.kiosk_visit = services.visit_start(device)
            response = self.get_response(request)

        visit = request.kiosk_visit
        if visit is not None and visit.ended_at is None and visit.public_id != visit_cookie:
            set_visit_cookie(response, request, visit.public_id)
        elif stale_visit and visit is None:
            response.delete_cookie(VISIT_COOKIE, samesite="Strict")
        # Nothing a resident saw may come back from a cache: the back button refetches.
        patch_cache_control(response, no_store=True, private=True)
        return response


def set_visit_cookie(response, request, public_id: str) -> None:
    response.set_cookie(VISIT_COOKIE, public_id, samesite="Strict", secure=request.is_secure(), httponly=False)


def set_device_cookie(response, request, credential: str) -> None:
    response.set_cookie(
        DEVICE_COOKIE,
        credential,
        max_age=DEVICE_COOKIE_MAX_AGE,
        samesite="Strict",
        secure=request.is_secure(),
        httponly=True,
    )

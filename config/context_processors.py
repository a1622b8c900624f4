"""Template context shared by every page."""

from django.conf import settings


def council(request) -> dict[str, object]:
    return {"council_name": settings.COUNCIL_NAME, "kiosk_idle_warning_seconds": settings.KIOSK_IDLE_WARNING_SECONDS}

from urllib.parse import urlparse

from channels.security.websocket import AllowedHostsOriginValidator, OriginValidator
from django.conf import settings
from django.urls import path

from chat.consumers import KioskConsumer, VisitorConsumer


def widget_origins() -> list[str]:
    """This site's own hosts and the other council sites allowed to embed the widget."""
    return [*settings.ALLOWED_HOSTS, *settings.CHAT_WIDGET_ORIGINS]


def widget_origin_allowed(origin: str) -> bool:
    """Whether the resident's socket accepts a page at `origin` (an Origin header's value)."""
    try:
        return OriginValidator(None, widget_origins()).valid_origin(urlparse(origin))
    except ValueError:  # a port out of range, say
        return False


# The resident's socket accepts the embedding sites too; the console socket stays same-site.
websocket_urlpatterns = [
    path("ws/chat/", OriginValidator(VisitorConsumer.as_asgi(), widget_origins())),
    path("ws/kiosk/", AllowedHostsOriginValidator(KioskConsumer.as_asgi())),
]

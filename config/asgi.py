"""ASGI entry point: Django for HTTP, Channels for the websockets of every app."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Set up Django (apps, settings) before anything imports models through routing.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import re_path  # noqa: E402

import agents_console.routing  # noqa: E402
import chat.routing  # noqa: E402
from config.collector import tune_for_server  # noqa: E402


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """Refuses the handshake (HTTP 403) for a path no app routes, where Channels would fail
    with a server error and a traceback in the log."""

    async def connect(self):
        await self.close()


websocket_urlpatterns = [*chat.routing.websocket_urlpatterns, *agents_console.routing.websocket_urlpatterns]
if settings.BENCH_RELAY:
    # The benchmark's baseline relay (bench/relay.py), never routed in production.
    from bench.relay import websocket_urlpatterns as relay_urlpatterns

    websocket_urlpatterns += relay_urlpatterns
websocket_urlpatterns.append(re_path(r"", UnknownPathConsumer.as_asgi()))

# Each app's routing wraps its consumers in the Origin check they need: the console accepts
# only this site, the resident's socket also the council sites allowed to embed the widget.
application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)

tune_for_server()

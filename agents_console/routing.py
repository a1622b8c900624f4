from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from agents_console.consumers import ConsoleConsumer, KioskStatusConsumer

websocket_urlpatterns = [
    path("ws/console/", AllowedHostsOriginValidator(ConsoleConsumer.as_asgi())),
    path("ws/console/kiosks/", AllowedHostsOriginValidator(KioskStatusConsumer.as_asgi())),
]

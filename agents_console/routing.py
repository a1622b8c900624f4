from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from agents_console.consumers import ConsoleConsumer

websocket_urlpatterns = [
    path("ws/console/", AllowedHostsOriginValidator(ConsoleConsumer.as_asgi())),
]

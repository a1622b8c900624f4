from django.urls import path

from chat.consumers import VisitorConsumer

websocket_urlpatterns = [
    path("ws/chat/", VisitorConsumer.as_asgi()),
]

"""The thinnest relay Channels can run: the baseline the chat benchmark compares against.

Routed only when BENCH_RELAY=1 (never in production): a socket joins the group named in
its path and every text frame it sends is forwarded to that group unchanged, with no
validation, no database and no payload building.
"""

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path


class RelayConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.group = f"bench.relay.{self.scope['url_route']['kwargs']['group']}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        await self.channel_layer.group_send(self.group, {"type": "relay.frame", "text": text_data})

    async def relay_frame(self, event):
        await self.send(text_data=event["text"])


websocket_urlpatterns = [path("ws/bench/relay/<int:group>/", RelayConsumer.as_asgi())]

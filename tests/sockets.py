"""Channels' test socket, waiting for the application as long as a hang detector would.

`WebsocketCommunicator` gives the application one second to accept, answer or finish
closing. With the test workers, PostgreSQL and Redis sharing two cores, a consumer's connect
(a snapshot of several reads) or disconnect (presence writes and broadcasts) sometimes needs
more, and the test then failed with a TimeoutError that said nothing about the product.
Nothing here times the product: a wait that ends early returns at once.
"""

from channels.testing import WebsocketCommunicator

SOCKET_WAIT_SECONDS = 10


class Communicator(WebsocketCommunicator):
    async def connect(self, timeout=SOCKET_WAIT_SECONDS):
        return await super().connect(timeout)

    async def disconnect(self, code=1000, timeout=SOCKET_WAIT_SECONDS):
        return await super().disconnect(code, timeout)

    async def receive_output(self, timeout=SOCKET_WAIT_SECONDS):
        return await super().receive_output(timeout)

    async def receive_from(self, timeout=SOCKET_WAIT_SECONDS):
        return await super().receive_from(timeout)

    async def receive_json_from(self, timeout=SOCKET_WAIT_SECONDS):
        return await super().receive_json_from(timeout)

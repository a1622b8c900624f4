"""The in-memory channel layer that the demo and any single-process server run on."""

from time import monotonic

from channels.layers import InMemoryChannelLayer


class SweepingInMemoryChannelLayer(InMemoryChannelLayer):
    """Channels' in-memory layer, sweeping out expired messages and memberships at most once
    per `sweep_interval_seconds` instead of on every group send and every receive.

    The stock layer checks every channel's queue and walks every group membership each time
    any consumer sends to a group or waits for an event. Each chat socket is in several
    groups (a resident's: the conversation, co-browse; a helper's console: the queue,
    presence and each conversation it follows), so with a few hundred sockets that walk
    took over a third of the server's busy time at the realistic rate (py-spy, see
    docs/performance.md), growing with every socket opened. Even once a second it held up
    every socket of the process for 0.5-1.2 ms at 100 conversations, inside whichever
    message's send or receive ran it: one message in forty at the realistic rate. Messages
    expire after `expiry` seconds (60) and memberships after hours, so sweeping every ten
    seconds changes nothing a client can see: a message may be delivered up to ten seconds
    after its expiry, to a socket that has not read its events for over a minute.
    """

    sweep_interval_seconds = 10.0
    _next_sweep = 0.0  # the first sweep is due at once

    def _clean_expired(self) -> None:
        now = monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.sweep_interval_seconds
        super()._clean_expired()

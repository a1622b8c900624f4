"""The console's own channel-layer group and event: who is online, for every console."""

from chat import events as chat_events
from config.realtime import broadcast

PRESENCE_CHANGED = "agents.presence_changed"


def presence_group() -> str:
    """Every console socket: told when a helper comes online, goes offline or changes status."""
    return "agents.presence"


def broadcast_presence_changed() -> None:
    from agents_console.selectors import helper_list_online

    broadcast(groups=[presence_group()], event_type=PRESENCE_CHANGED, helpers=helper_list_online())
    # Waiting residents learn at once whether an advisor is now online to answer them.
    chat_events.broadcast_queue_moved()

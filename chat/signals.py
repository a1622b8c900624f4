"""Signals chat sends after a commit, for higher apps (the console's routing) to act on.

chat never imports the console; the console connects to these at start-up.
"""

from django.dispatch import Signal

# A conversation now waits in the queue: new, transferred back, or returned unanswered.
conversation_waiting = Signal()
# A helper holds one conversation fewer: it ended or was transferred away.
conversation_released = Signal()

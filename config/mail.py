"""Email sent beside the request, not in its way.

A mail server that is slow or does not answer would otherwise hold up whoever's action sent
the mail: a resident's "End chat" waited on SMTP in the socket's own worker thread, and the
socket answered nothing else meanwhile. The message is built (and the database read) by
the caller; the talking to the mail server happens here, in a small pool of threads, each
connection bounded by EMAIL_TIMEOUT, followed by the caller's `on_done` (which may record the
outcome in the database from that thread). The pool's threads finish what they hold before
the process exits.
"""

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

from django.core.mail import EmailMessage

logger = logging.getLogger(__name__)

_senders = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mail")
_pending: set[Future] = set()


def send_in_background(message: EmailMessage, *, what: str, on_done: Callable[[bool], None] | None = None) -> Future:
    """Send `message` from the pool; a failure is logged with `what`, never raised. `on_done`
    is then called in the pool's thread with whether it was sent."""

    def send() -> None:
        try:
            message.send()
            sent = True
        except Exception:
            logger.exception("sending %s failed", what)
            sent = False
        if on_done is not None:
            try:
                on_done(sent)
            except Exception:
                logger.exception("recording whether %s was sent failed", what)

    future = _senders.submit(send)
    _pending.add(future)
    future.add_done_callback(_pending.discard)
    return future


def wait_for_pending(timeout: float | None = None) -> bool:
    """Wait until every message handed over so far has been sent or has failed; whether all did."""
    _done, not_done = wait(list(_pending), timeout=timeout)
    return not not_done

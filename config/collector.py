"""Python's garbage collector, tuned once for a long-running server process."""

import functools
import gc


@functools.cache
def tune_for_server() -> None:
    """Keep what start-up built out of the collector's passes, and widen its young generation.

    A server holds every socket's objects for hours and makes short-lived ones for each frame.
    With the collector's defaults, full passes over everything (Django, the apps, every open
    socket) stopped all sockets for 85-190 ms every 15-25 s at 500 conversations (measured
    with `gc.callbacks`; docs/performance.md). What is built before the first request lives
    as long as the process, so it is frozen out of every pass; and a larger young generation
    lets each frame's objects die before they are promoted, so full passes come rarely.

    Once per process: freezing again later (a reloaded module) would also freeze whatever is
    alive by then, such as database connections, which could then never be collected.
    """
    gc.collect()  # start-up's own garbage, which frozen could never be freed
    gc.freeze()
    gc.set_threshold(20_000, 20, 10)

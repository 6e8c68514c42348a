"""Where each greenthread of this process is waiting: for a graceful stop
that does not end.

A service whose stop hangs is waiting somewhere: a worker, a consumer
thread, a close handshake with a broker node. Python's faulthandler shows
OS threads only, and under eventlet a whole service runs in one OS thread,
so this walks the greenlets themselves.
"""

import gc
import traceback

import greenlet


def greenthread_stacks() -> str:
    """The stack of every suspended greenlet, innermost call last."""
    stacks = []
    for candidate in gc.get_objects():
        # type(), not isinstance(): isinstance asks a weakref proxy for its
        # referent's class, and one whose referent is gone raises.
        if issubclass(type(candidate), greenlet.greenlet) and candidate.gr_frame is not None:
            stacks.append("".join(traceback.format_stack(candidate.gr_frame)))
    return f"{len(stacks)} greenthread(s) waiting:\n" + "\n".join(stacks)

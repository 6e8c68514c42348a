"""order_pipeline.greenthread_stacks: what SIGUSR1 and a stop that does
not end log."""

import weakref

import eventlet
from eventlet.event import Event

from order_pipeline.greenthread_stacks import greenthread_stacks


class Referent:
    pass


def waiting_here(event):
    event.wait()


def test_every_waiting_greenthread_is_shown_even_beside_a_dead_weak_proxy():
    referent = Referent()
    dead = weakref.proxy(referent)
    del referent  # `dead` now raises ReferenceError on any use
    event = Event()
    waiting = eventlet.spawn(waiting_here, event)
    eventlet.sleep(0)
    try:
        report = greenthread_stacks()
        assert "in waiting_here" in report
    finally:
        event.send()
        waiting.wait()
    assert dead is not None

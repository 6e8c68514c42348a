"""order_pipeline.extensions.batch_events: how events become batches.

nameko's consumer hands a handler the messages already read off the socket
one after the other, without yielding; here the test does the handing over,
so which events arrive "together" is set by the test, not by the machine's
speed. The container records the workers it is asked for; nothing is
settled (tests/integration/test_messaging.py and the e2e suite run batches
against the broker)."""

import eventlet
import pytest

from order_pipeline.extensions.batch_events import BatchEventHandler
from order_pipeline.extensions.reliable_events import ReliableEventHandler


class Container:
    """What BatchEventHandler uses of a nameko container to start batches."""

    config = {"EVENT_BATCH_SIZE": 4, "EVENT_BATCHES_IN_FLIGHT": 1}
    max_workers = 10

    def __init__(self):
        self.shared_extensions = {}  # where nameko binds the queue consumer
        self.batches = []

    def spawn_worker(self, entrypoint, args, kwargs, context_data=None, handle_result=None):
        self.batches.append(args[0])


class Message:
    headers = {}


@pytest.fixture
def handler(monkeypatch):
    # The broker-facing part of setup (queues, publisher) is not under test.
    monkeypatch.setattr(ReliableEventHandler, "setup", lambda self: None)
    container = Container()  # held here: extensions keep a weak reference
    bound = BatchEventHandler("source", "Thing").bind(container, "handle")
    bound.setup()
    yield bound


def hand_over(handler, numbers):
    """Messages read off the socket in one go: no yield between them."""
    for number in numbers:
        handler.handle_message({"n": number}, Message())


def batches(handler):
    return [[payload["n"] for payload in batch] for batch in handler.container.batches]


def test_events_that_arrive_together_go_in_one_batch(handler):
    hand_over(handler, [1, 2, 3])
    assert batches(handler) == []  # not before the consumer yields
    eventlet.sleep(0)
    assert batches(handler) == [[1, 2, 3]]


def test_a_lone_event_starts_at_once_and_later_ones_wait_for_a_free_batch(handler):
    hand_over(handler, [1])
    eventlet.sleep(0)
    assert batches(handler) == [[1]]
    # One batch in flight at most: these wait for it to finish.
    hand_over(handler, [2, 3])
    eventlet.sleep(0)
    assert batches(handler) == [[1]]
    assert [payload["n"] for payload, _ in handler._waiting] == [2, 3]


def test_a_burst_larger_than_a_batch_is_cut_at_the_batch_size(handler):
    handler.max_batches = 2
    hand_over(handler, range(1, 11))
    eventlet.sleep(0)
    # Two batches of EVENT_BATCH_SIZE (4) in flight; the rest wait.
    assert batches(handler) == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert [payload["n"] for payload, _ in handler._waiting] == [9, 10]

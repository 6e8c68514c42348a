"""order_pipeline.extensions.batch_events: how events become batches.

nameko's consumer hands a handler the messages already read off the socket
one after the other, without yielding; here the test does the handing over,
so which events arrive "together" is set by the test, not by the machine's
speed. The container records the batches the handler hands the service, and
the test finishes them; settling (acks, retries) is left out
(tests/integration/test_messaging.py and the e2e suite run batches against
the broker)."""

import eventlet
import pytest

from order_pipeline.extensions.batch_events import BatchEventHandler
from order_pipeline.extensions.reliable_events import ReliableEventHandler


class Container:
    """What BatchEventHandler uses of a nameko container to start batches:
    it records each batch the handler hands the service, and how to finish it."""

    max_workers = 10

    def __init__(self, batches_in_flight):
        self.config = {"EVENT_BATCH_SIZE": 4, "EVENT_BATCHES_IN_FLIGHT": batches_in_flight}
        self.shared_extensions = {}  # where nameko binds the queue consumer
        self.batches = []  # each batch's payloads, in the order the batches started
        self.results = []  # each batch's handle_result

    def spawn_worker(self, entrypoint, args, kwargs, context_data=None, handle_result=None):
        self.batches.append(args[0])
        self.results.append(handle_result)


class Message:
    headers = {}


@pytest.fixture
def make_handler(monkeypatch):
    # The broker-facing part (queues, publisher, acks) is not under test.
    monkeypatch.setattr(ReliableEventHandler, "setup", lambda self: None)
    monkeypatch.setattr(
        ReliableEventHandler, "settle", lambda self, message, error, pause_on_trouble=True: True
    )
    containers = []  # held here: extensions keep a weak reference

    def make(batches_in_flight=1):
        containers.append(Container(batches_in_flight))
        bound = BatchEventHandler("source", "Thing").bind(containers[-1], "handle")
        bound.setup()
        return bound

    return make


@pytest.fixture
def handler(make_handler):
    return make_handler()


def hand_over(handler, numbers):
    """Messages read off the socket in one go: no yield between them."""
    for number in numbers:
        handler.handle_message({"n": number}, Message())


def the_consumer_yields():
    eventlet.sleep(0)


def batches(handler):
    """The batches the handler has handed the service so far."""
    return [[payload["n"] for payload in batch] for batch in handler.container.batches]


def finish(handler, index):
    """Batch `index` (in the order the batches started) returns, every event done."""
    events = len(handler.container.batches[index])
    handler.container.results[index](None, [None] * events, None)


def test_events_that_arrive_together_go_in_one_batch(handler):
    hand_over(handler, [1, 2, 3])
    assert batches(handler) == []  # not before the consumer yields
    the_consumer_yields()
    assert batches(handler) == [[1, 2, 3]]


def test_a_lone_event_starts_at_once_and_later_ones_wait_for_a_free_batch(handler):
    hand_over(handler, [1])
    the_consumer_yields()
    assert batches(handler) == [[1]]
    # One batch in flight at most: these wait for it to finish ...
    hand_over(handler, [2, 3])
    the_consumer_yields()
    assert batches(handler) == [[1]]
    # ... and then go together, as the next batch.
    finish(handler, 0)
    assert batches(handler) == [[1], [2, 3]]


def test_a_burst_larger_than_a_batch_is_cut_at_the_batch_size(make_handler):
    handler = make_handler(batches_in_flight=2)
    hand_over(handler, range(1, 11))
    the_consumer_yields()
    # Two batches of EVENT_BATCH_SIZE (4) in flight; the rest wait for one
    # of them to finish.
    assert batches(handler) == [[1, 2, 3, 4], [5, 6, 7, 8]]
    finish(handler, 1)
    assert batches(handler) == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    finish(handler, 0)
    finish(handler, 2)
    assert len(batches(handler)) == 3  # nothing was left waiting

"""When a queue consumer decides the broker has forgotten it
(order_pipeline.extensions.resubscribing_consumer); the whole round trip, a
forgotten consumer answering again, is in
tests/integration/test_resubscribing_consumer.py."""

import pytest
from kombu import Connection

from order_pipeline.extensions.resubscribing_consumer import Resubscribe, looks_forgotten


@pytest.mark.parametrize(
    "idle, in_hand, ready, limit, forgotten",
    [
        (20, 0, 3, 15, True),  # idle, empty-handed, messages waiting
        (15, 0, 1, 15, True),
        (14.9, 0, 3, 15, False),  # not idle for long enough
        (20, 1, 3, 15, False),  # still handling one: its prefetch may be full
        (20, 0, 0, 15, False),  # nothing to take: idle, not forgotten
        (999, 0, 3, 0, False),  # the watch is off
    ],
)
def test_a_consumer_looks_forgotten_only_idle_empty_handed_with_messages_waiting(
    idle, in_hand, ready, limit, forgotten
):
    assert looks_forgotten(idle, in_hand, ready, limit) is forgotten


def test_kombu_takes_the_resubscribe_signal_for_a_lost_connection():
    # kombu's consumer loop reconnects on its transport's connection errors
    # and, on those, does not try to cancel consumers on the dropped one.
    assert issubclass(Resubscribe, Connection("amqp://").connection_errors)

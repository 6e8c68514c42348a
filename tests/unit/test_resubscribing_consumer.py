"""When a queue consumer decides the broker has forgotten it
(order_pipeline.extensions.resubscribing_consumer); the whole round trip, a
forgotten consumer answering again, is in
tests/integration/test_resubscribing_consumer.py."""

from types import SimpleNamespace

import pytest
from kombu import Connection

from order_pipeline.extensions.reliable_events import ReliableEventHandler
from order_pipeline.extensions.resubscribing_consumer import (
    Resubscribe,
    ResubscribingQueueConsumer,
    looks_forgotten,
)


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


class FakeChannel:
    connection = True

    def __init__(self):
        self.acks = []

    def basic_ack(self, delivery_tag, multiple=False):
        self.acks.append((delivery_tag, multiple))


class FakeMessage:
    def __init__(self, channel, delivery_tag):
        self.channel, self.delivery_tag = channel, delivery_tag

    def ack(self):
        self.channel.basic_ack(self.delivery_tag)


def consumer_holding(messages):
    consumer = ResubscribingQueueConsumer()
    consumer.in_hand.update(messages)
    return consumer


def test_a_batch_is_acked_with_one_frame_when_nothing_older_is_in_hand():
    channel = FakeChannel()
    batch = [FakeMessage(channel, tag) for tag in (1, 2, 3)]
    waiting = FakeMessage(channel, 4)  # delivered after the batch
    consumer = consumer_holding([*batch, waiting])
    consumer.ack_messages(batch)
    assert channel.acks == [(3, True)]
    assert consumer.in_hand == {waiting}


def test_a_batch_behind_an_older_message_in_hand_is_acked_one_by_one():
    # A multiple ack up to tag 3 would ack the older message 1 too.
    channel = FakeChannel()
    older = FakeMessage(channel, 1)
    batch = [FakeMessage(channel, tag) for tag in (2, 3)]
    consumer = consumer_holding([older, *batch])
    consumer.ack_messages(batch)
    assert channel.acks == [(2, False), (3, False)]
    assert consumer.in_hand == {older}


def test_messages_of_an_earlier_channel_do_not_hold_a_batch_back():
    old_channel, channel = FakeChannel(), FakeChannel()
    stale = FakeMessage(old_channel, 1)
    batch = [FakeMessage(channel, tag) for tag in (1, 2)]
    consumer = consumer_holding([stale, *batch])
    consumer.ack_messages(batch)
    assert channel.acks == [(2, True)] and old_channel.acks == []


class FailingChannel(FakeChannel):
    """Acks fail from `failing_tag` on; requeues are recorded."""

    def __init__(self, failing_tag):
        super().__init__()
        self.failing_tag = failing_tag
        self.requeued = []

    def basic_ack(self, delivery_tag, multiple=False):
        if delivery_tag >= self.failing_tag:
            raise RuntimeError("the channel failed")
        super().basic_ack(delivery_tag, multiple)


class KombuLikeMessage(FakeMessage):
    """As kombu's Message: acknowledged once its ack went out."""

    acknowledged = False

    def ack(self):
        super().ack()
        self.acknowledged = True

    def requeue(self):
        self.channel.requeued.append(self.delivery_tag)
        self.acknowledged = True


def test_a_batch_whose_ack_fails_half_way_requeues_only_what_was_not_acked():
    channel = FailingChannel(failing_tag=3)
    older = KombuLikeMessage(channel, 1)  # in hand: the batch goes one by one
    batch = [KombuLikeMessage(channel, tag) for tag in (2, 3, 4)]
    handler = SimpleNamespace(queue_consumer=consumer_holding([older, *batch]))
    assert ReliableEventHandler.settle_done(handler, batch) is False
    assert channel.acks == [(2, False)]
    assert channel.requeued == [3, 4]

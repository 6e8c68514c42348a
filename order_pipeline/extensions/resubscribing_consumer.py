"""nameko's queue consumer, which subscribes again when the broker has
stopped delivering to it.

After the leader of a quorum queue changes (its node stopped, paused by a
partition, or cut off), RabbitMQ can leave a consumer registered on a
healthy connection that never gets another delivery: the consumer keeps
reading its socket, heartbeats flow, the queue fills, and nothing reaches
it until it subscribes again (rabbitmq-server#15473, deliveries orphaned at
a leader election until that consumer reconnects). Seen here in the cluster
suite: after the node leading the queues stopped, the generator's RPC
consumer sat idle for minutes on a live node while every processor's
`get_orders` call timed out. Neither side ever notices on its own.

`ResubscribingQueueConsumer` looks for exactly that state: nothing
delivered to it for CONSUMER_RESUBSCRIBE_SECONDS, nothing of its own in
hand (every message it was given has been acked or requeued), and messages
ready on one of its queues (a passive declare, on a connection of its own).
A consumer with room takes a ready message at once, so a healthy one is
never in that state for long. It then drops its connection, and kombu's
consumer loop connects and subscribes again, as after any lost connection.
`0` turns the watch off.
"""

import logging
import socket
import time

import eventlet
from amqp.exceptions import NotFound
from greenlet import GreenletExit
from nameko.messaging import QueueConsumer

from order_pipeline.broker import broker, close_connection, connect, mask_uri
from order_pipeline.config import setting
from order_pipeline.kombu_internals import quiet_intended_reconnects
from order_pipeline.queues import close_quietly

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5
LONGEST_CHECK_INTERVAL_SECONDS = 5


class Resubscribe(ConnectionAbortedError):
    """Raised in the consuming loop to make kombu connect again. An OSError,
    so kombu's loop treats it as a lost connection (it reconnects) and does
    not try to cancel the consumers on the dropped connection. kombu's
    "Connection to broker lost" line and traceback are left out for it:
    the consumer has logged why it subscribes again."""


quiet_intended_reconnects(Resubscribe)


def looks_forgotten(idle_seconds: float, in_hand: int, ready: int, limit: float) -> bool:
    """True for a consumer the broker no longer delivers to: idle past the
    limit with nothing in hand while messages wait on its queues."""
    return limit > 0 and idle_seconds >= limit and in_hand == 0 and ready > 0


class ResubscribingQueueConsumer(QueueConsumer):
    def __init__(self):
        super().__init__()
        self.watched = []  # the providers registered (their queues are checked)
        self.in_hand = set()  # messages delivered, not yet acked or requeued
        self.last_delivery = time.monotonic()
        self.subscriptions = 0  # how many times the consumers were (re)subscribed
        self.resubscribe_reason = None  # set by the watch, acted on by the loop
        self.live_connection = None
        self.check_connection = None
        self.watch_thread = None

    def setup(self):
        super().setup()
        config = self.container.config
        self.limit_seconds = setting(
            config, "CONSUMER_RESUBSCRIBE_SECONDS", float, minimum=0, default=15.0
        )
        self.broker = broker(config)

    def register_provider(self, provider):
        self.watched.append(provider)
        super().register_provider(provider)

    def unregister_provider(self, provider):
        if provider in self.watched:
            self.watched.remove(provider)
        super().unregister_provider(provider)

    def start(self):
        if self.watch_thread is None and self.limit_seconds > 0:
            self.last_delivery = time.monotonic()
            self.watch_thread = self.container.spawn_managed_thread(self._watch)
        super().start()

    def stop(self):
        self._stop_watch()
        super().stop()

    def kill(self):
        self._stop_watch()
        super().kill()

    def handle_message(self, provider, body, message):
        self.last_delivery = time.monotonic()
        self.in_hand.add(message)
        super().handle_message(provider, body, message)

    def ack_message(self, message):
        self.in_hand.discard(message)
        super().ack_message(message)

    def requeue_message(self, message):
        self.in_hand.discard(message)
        super().requeue_message(message)

    def ack_messages(self, messages):
        """Ack `messages` (delivered on one channel) with one basic.ack
        covering them all (`multiple`) when nothing else delivered on that
        channel and still in hand has a lower delivery tag (it would be
        acked with them); one by one otherwise. A batch of events is then
        one frame to the broker rather than one per event."""
        if len(messages) < 2:
            for message in messages:
                self.ack_message(message)
            return
        channel = messages[0].channel
        batch = set(messages)
        highest = max(message.delivery_tag for message in messages)
        covered = all(
            message in batch
            for message in self.in_hand
            if message.channel is channel and message.delivery_tag <= highest
        )
        if not covered or any(message.channel is not channel for message in messages):
            for message in messages:
                self.ack_message(message)
            return
        self.in_hand.difference_update(batch)
        # As nameko's ack_message: on a connection that is gone the broker
        # has taken the messages back already.
        if channel.connection:
            try:
                channel.basic_ack(highest, multiple=True)
            except ConnectionError:
                pass

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        # Messages of an earlier connection go back to the queue with it.
        self.in_hand.clear()
        self.live_connection = connection
        self.subscriptions += 1
        self.resubscribe_reason = None
        self.last_delivery = time.monotonic()
        super().on_consume_ready(connection, channel, consumers, **kwargs)

    def on_iteration(self):
        super().on_iteration()
        reason = self.resubscribe_reason
        if reason is None or self.should_stop:
            return
        self.resubscribe_reason = None
        log.warning("%s: subscribing again: %s", self.container.service_name, reason)
        self._drop_live_connection()
        raise Resubscribe(reason)

    def _drop_live_connection(self):
        # Without a close handshake: on a connection the broker neglects,
        # nothing says it would be answered.
        connection = self.live_connection
        try:
            if connection is not None and connection.connected:
                connection.connection.sock.shutdown(socket.SHUT_RDWR)
        except (AttributeError, OSError):
            pass

    def _watch(self):
        interval = min(self.limit_seconds / 2, LONGEST_CHECK_INTERVAL_SECONDS)
        while True:
            eventlet.sleep(interval)
            self.check()

    def check(self) -> None:
        """Ask the consuming loop to subscribe again if the broker seems to
        have forgotten this consumer."""
        subscription = self.subscriptions
        idle = time.monotonic() - self.last_delivery
        if self.resubscribe_reason is not None or not looks_forgotten(
            idle, len(self.in_hand), 1, self.limit_seconds
        ):
            return
        ready = self.ready_on_queues()
        if subscription != self.subscriptions:  # subscribed again meanwhile
            return
        if looks_forgotten(idle, len(self.in_hand), ready, self.limit_seconds):
            self.resubscribe_reason = (
                f"nothing delivered for {idle:.0f} s with nothing in hand, "
                f"while {ready} message(s) wait on its queues"
            )

    def ready_on_queues(self) -> int:
        """Messages ready on the watched queues (0 if the broker cannot say)."""
        queues = {provider.queue.name for provider in self.watched if provider.queue}
        for attempt in (1, 2):  # a kept connection the broker has closed: once more
            try:
                if self.check_connection is None:
                    self.check_connection = connect(
                        self.broker, connect_timeout=CONNECT_TIMEOUT_SECONDS
                    )
                return sum(self._ready(name) for name in sorted(queues))
            except Exception as exc:  # the broker away: no verdict this time
                self._close_check_connection()
                if attempt == 2:
                    log.debug("consumer check failed: %s", mask_uri(str(exc)))
        return 0

    def _ready(self, queue_name: str) -> int:
        # A passive declare of a missing queue closes its channel.
        channel = self.check_connection.channel()
        try:
            return channel.queue_declare(queue=queue_name, passive=True).message_count
        except NotFound:
            return 0
        finally:
            close_quietly(channel)

    def _close_check_connection(self):
        connection, self.check_connection = self.check_connection, None
        if connection is not None:
            close_connection(connection)

    def _stop_watch(self):
        thread, self.watch_thread = self.watch_thread, None
        if thread is not None:
            thread.kill()
            try:
                thread.wait()
            except GreenletExit:
                pass
        self._close_check_connection()

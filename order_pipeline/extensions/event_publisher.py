"""Publish events so that the caller knows each one reached a queue, with
one wait for the broker's confirms per batch rather than one per event.

nameko's EventDispatcher (and kombu's `confirm_publish` transport option)
wait for the broker's confirm after every message: one round trip each,
which caps a publisher at a few thousand events a second on any machine.
This publisher puts its channel in confirm mode itself, sends a whole batch
without waiting, then reads the broker's acks (which may cover many
messages at once: `multiple`) until every message of the batch is settled.

It also sets `mandatory`: nameko's dispatcher does not, so an event no
queue is bound for is confirmed and then dropped. RabbitMQ sends an
unroutable message's basic.return before its ack, so when the ack arrives
we already know whether that message was returned (returns carry no
delivery tag: each message has a `message_id` to match them by).

An event is reported routed only when it was acked and not returned.
Anything else (returned, nacked twice, unconfirmed when the connection
dropped or the confirm wait timed out) is reported False and stays in the
caller's outbox, to be published again later.

A nack costs the connection. RabbitMQ nacks when a queue cannot take the
message (full, with `reject-publish`), and also, with quorum queues, when
the channel's view of the queue is stale: a channel that first published
to a queue while its leader node was stopping was seen nacking everything
until that node came back (minutes), while a new channel published to the
newly elected leader at once. So nacked messages are published once more on
a new connection, and every new connection starts one node further along
AMQP_URI's list than the last, so that a node that misbehaves without
refusing connections is not the one picked again.

A connection that failed is dropped without a close handshake: a node that
is frozen, or cut off by a partition, never answers the handshake, and the
publisher (its lock, and the outbox rows it holds) would wait on it for as
long as the node stayed away, instead of moving on to the next node.
"""

import itertools
import json
import logging
import time
import uuid

from amqp import Message
from eventlet.semaphore import Semaphore
from nameko.constants import HEADER_PREFIX, PERSISTENT
from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange
from opentelemetry.trace import SpanKind

from order_pipeline.broker import (
    broker,
    check_broker,
    close_connection,
    node_count,
    starting_at,
)
from order_pipeline.trace_context import carrier_context, current_carrier, recording, tracer

log = logging.getLogger(__name__)

# The longest wait for a batch's confirms (and for a socket write).
CONFIRM_TIMEOUT_SECONDS = 5


class ConfirmTimeout(Exception):
    """The broker did not settle every message of a batch in time."""


class Nacked(Exception):
    """The broker nacked messages of a batch."""


class RoutedEventPublisher(DependencyProvider):
    """Injects `publish(event_type, payloads) -> [payload routed?]`."""

    def setup(self):
        config = self.container.config
        check_broker(config)
        self.broker = broker(config)
        self.exchange = get_event_exchange(self.container.service_name, config)
        # One channel, used by one greenthread at a time.
        self._lock = Semaphore()
        # Connections made so far: each new one starts at the next node.
        self._connections_made = 0
        self._connection = None
        self._channel = None
        # Message ids, to match returns by: unique in this process.
        self._message_ids = (f"{uuid.uuid4().hex[:16]}.{n}" for n in itertools.count(1))
        # The channel's confirm-mode delivery tags: the broker numbers the
        # messages published on a channel 1, 2, 3... from confirm.select.
        self._last_tag = 0
        # Of the batch being published: delivery tag -> (index, message id)
        # of each message not yet acked or nacked, the message ids returned
        # unroutable, and index -> routed? of each message acked (a nacked
        # one is in neither dict: the next attempt publishes it again).
        self._unsettled = {}
        self._returned = set()
        self._settled = {}

    def stop(self):
        self._close()

    def kill(self):
        self._drop()

    def get_dependency(self, worker_ctx):
        return self.publish

    def publish(self, event_type, payloads, trace_contexts=None):
        """Publish every payload, then wait once for the broker to settle
        them all; return a list of booleans, True = confirmed and routed.

        `trace_contexts`, one per payload ({"traceparent": ...} or {}): the
        trace each event continues, in a "publish" span whose context goes
        in the message's `nameko.*` headers (handed to the handling worker).

        On a broker error, a nack, or no confirms within
        CONFIRM_TIMEOUT_SECONDS, the messages not yet acked are published
        once more on a new connection; what is still not acked then is
        reported False (it may have arrived: the caller publishes it again,
        and consumers must take an event twice).
        """
        trace_contexts = trace_contexts or [{}] * len(payloads)
        with self._lock:
            self._settled = {}
            for attempt in (1, 2):
                pending = [i for i in range(len(payloads)) if i not in self._settled]
                if not pending:
                    break
                try:
                    self._publish_batch(event_type, pending, payloads, trace_contexts)
                    break
                except Exception as exc:
                    self._drop()
                    if attempt == 1:
                        log.warning("publishing %s failed, reconnecting: %s", event_type, exc)
                    else:
                        log.warning(
                            "%d %s event(s) not published, left in the outbox: %s",
                            len(payloads) - sum(self._settled.values()),
                            event_type,
                            exc,
                        )
            settled, self._settled = self._settled, {}
            self._unsettled = {}
            self._returned = set()
        return [settled.get(i, False) for i in range(len(payloads))]

    def _publish_batch(self, event_type, indexes, payloads, trace_contexts):
        channel = self._get_channel()
        self._unsettled = {}
        self._returned = set()
        publish = self._publish_traced if recording() else self._publish
        for index in indexes:
            message_id = next(self._message_ids)
            publish(channel, event_type, payloads[index], trace_contexts[index], message_id)
            self._last_tag += 1
            self._unsettled[self._last_tag] = (index, message_id)
        deadline = time.monotonic() + CONFIRM_TIMEOUT_SECONDS
        while self._unsettled:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConfirmTimeout(
                    f"{len(self._unsettled)} of {len(indexes)} message(s) unconfirmed "
                    f"after {CONFIRM_TIMEOUT_SECONDS} s"
                )
            # Runs _on_ack, _on_nack and _on_return; socket.timeout if quiet.
            self._connection.drain_events(timeout=remaining)
        nacked = sum(1 for index in indexes if index not in self._settled)
        if nacked:
            raise Nacked(f"the broker nacked {nacked} of {len(indexes)} message(s)")

    def _publish_traced(self, channel, event_type, payload, trace_context, message_id):
        with tracer().start_as_current_span(
            f"{event_type} publish",
            context=carrier_context(trace_context),
            kind=SpanKind.PRODUCER,
        ):
            self._publish(
                channel, event_type, payload, current_carrier() or trace_context, message_id
            )

    def _publish(self, channel, event_type, payload, trace_context, message_id):
        """One message, as nameko's dispatcher sends an event (JSON body,
        persistent, the trace context in `nameko.*` headers), `mandatory`;
        written to the socket with no wait for its confirm. py-amqp's own
        basic_publish, not kombu's Producer: per message, kombu's layers cost
        the generator more than the rest of publishing an event."""
        headers = {f"{HEADER_PREFIX}.{key}": value for key, value in trace_context.items()}
        message = Message(
            json.dumps(payload).encode(),
            content_type="application/json",
            content_encoding="utf-8",
            application_headers=headers,
            delivery_mode=PERSISTENT,
            message_id=message_id,
        )
        channel.basic_publish(
            message,
            exchange=self.exchange.name,
            routing_key=event_type,
            mandatory=True,
            timeout=CONFIRM_TIMEOUT_SECONDS,
        )

    def _settle(self, delivery_tag, multiple, acked):
        if multiple:  # every tag up to this one; the dict is in tag order
            tags = list(itertools.takewhile(lambda tag: tag <= delivery_tag, self._unsettled))
        else:
            tags = [delivery_tag] if delivery_tag in self._unsettled else []
        for tag in tags:
            index, message_id = self._unsettled.pop(tag)
            if acked:
                self._settled[index] = message_id not in self._returned

    def _on_ack(self, delivery_tag, multiple):
        self._settle(delivery_tag, multiple, acked=True)

    def _on_nack(self, delivery_tag, multiple):
        self._settle(delivery_tag, multiple, acked=False)

    def _on_return(self, exception, exchange, routing_key, message):
        self._returned.add(message.properties.get("message_id"))

    def _get_channel(self):
        if self._channel is None:
            uri = starting_at(self.broker.uri, self._connections_made)
            self._connections_made += 1
            self._connection = self.broker.connection(uri, connect_timeout=5)
            # One attempt per node, no back-off sleep: kombu's retry would
            # sleep 2 s per round while the broker is down, with the
            # channel's lock (and the caller's outbox rows) held. `publish`
            # already tries a second time, and the outbox keeps what did not
            # go out. (Within one round over the nodes kombu does not sleep.)
            self._connection.ensure_connection(max_retries=node_count(self.broker.uri) - 1)
            channel = self._connection.channel()
            channel.confirm_select()
            self._last_tag = 0
            # py-amqp calls these for every basic.ack/nack on the channel
            # (its public hook: Channel.events).
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            channel.events["basic_return"].add(self._on_return)
            self.exchange(channel).declare()
            self._channel = channel
        return self._channel

    def _close(self):
        if self._connection is not None:
            close_connection(self._connection)
        self._connection = None
        self._channel = None

    def _drop(self):
        """Forget a failed connection: its socket closed, nothing sent on it."""
        if self._connection is not None:
            try:
                self._connection.collect()
            except Exception:  # the socket is gone already
                pass
        self._connection = None
        self._channel = None

"""Publish events so that the caller knows each one reached a queue.

nameko's EventDispatcher waits for the broker's confirm but does not set
`mandatory`, so an event that no queue is bound for is confirmed and then
dropped. This publisher sets `mandatory` and listens for the broker's
basic.return (which RabbitMQ sends before the confirm), and reports, per
event, whether it was both confirmed and routed. Anything not reported as
routed stays in the caller's outbox and is published again later.
"""

import logging

from eventlet.semaphore import Semaphore
from kombu import Connection, Producer
from nameko.constants import HEADER_PREFIX, PERSISTENT
from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange
from opentelemetry.trace import SpanKind

from order_pipeline.broker import check_broker, node_count
from order_pipeline.settings import amqp_uri
from order_pipeline.tracing import carrier_context, current_carrier, tracer

log = logging.getLogger(__name__)

CONFIRM_TIMEOUT_SECONDS = 5


class RoutedEventPublisher(DependencyProvider):
    """Injects `publish(event_type, payloads) -> [payload routed?]`."""

    def setup(self):
        config = self.container.config
        check_broker(config)
        self.amqp_uri = amqp_uri(config)
        self.exchange = get_event_exchange(self.container.service_name, config)
        # One channel, used by one greenthread at a time.
        self._lock = Semaphore()
        self._connection = None
        self._producer = None
        self._returned = False

    def stop(self):
        self._close()

    def kill(self):
        self._close()

    def get_dependency(self, worker_ctx):
        return self.publish

    def publish(self, event_type, payloads, trace_contexts=None):
        """Publish each payload; return a list of booleans, True = routed.

        `trace_contexts`, one per payload ({"traceparent": ...} or {}): the
        trace each event continues, in a "publish" span whose context goes
        in the message's `nameko.*` headers (handed to the handling worker).

        Stops at the first broker error (the rest are reported False), after
        one reconnect attempt: the caller's outbox keeps what was not sent.
        """
        routed = []
        trace_contexts = trace_contexts or [{}] * len(payloads)
        with self._lock:
            for payload, trace_context in zip(payloads, trace_contexts):
                try:
                    routed.append(self._publish_traced(event_type, payload, trace_context))
                except Exception as exc:
                    log.warning("publishing %s failed, reconnecting: %s", event_type, exc)
                    self._close()
                    try:
                        routed.append(self._publish_traced(event_type, payload, trace_context))
                    except Exception as exc:
                        log.warning(
                            "broker unavailable, %d %s event(s) left in the outbox: %s",
                            len(payloads) - len(routed),
                            event_type,
                            exc,
                        )
                        self._close()
                        break
        return routed + [False] * (len(payloads) - len(routed))

    def _publish_traced(self, event_type, payload, trace_context):
        with tracer().start_as_current_span(
            f"{event_type} publish",
            context=carrier_context(trace_context),
            kind=SpanKind.PRODUCER,
        ):
            # Without an SDK there is no span of ours: pass the order's on.
            carrier = current_carrier() or trace_context
            headers = {f"{HEADER_PREFIX}.{key}": value for key, value in carrier.items()}
            return self._publish_one(event_type, payload, headers)

    def _publish_one(self, event_type, payload, headers):
        producer = self._get_producer()
        self._returned = False
        producer.publish(
            payload,
            headers=headers,
            exchange=self.exchange,
            routing_key=event_type,
            mandatory=True,
            delivery_mode=PERSISTENT,
            serializer="json",
            retry=False,
            timeout=CONFIRM_TIMEOUT_SECONDS,
        )
        return not self._returned

    def _on_return(self, exception, exchange, routing_key, message):
        self._returned = True

    def _get_producer(self):
        if self._producer is None:
            self._connection = Connection(
                self.amqp_uri, connect_timeout=5, transport_options={"confirm_publish": True}
            )
            # One attempt per node, no back-off sleep: kombu's retry would
            # sleep 2 s per round while the broker is down, with the
            # channel's lock (and the caller's outbox rows) held. `publish`
            # already tries a second time, and the outbox keeps what did not
            # go out. (Within one round over the nodes kombu does not sleep.)
            self._connection.ensure_connection(max_retries=node_count(self.amqp_uri) - 1)
            self._producer = Producer(
                self._connection.channel(), exchange=self.exchange, on_return=self._on_return
            )
        return self._producer

    def _close(self):
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:  # already broken; nothing to release
                pass
        self._connection = None
        self._producer = None

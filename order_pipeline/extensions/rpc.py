"""`@rpc` as nameko's, except that its queue has the type QUEUE_TYPE names,
and a reply the broker cannot take does not stop the service.

nameko's RpcConsumer declares `rpc-<service>` as a plain (classic) queue;
`TypedRpcConsumer` declares it with `order_pipeline.queues.durable_queue`,
checked at start-up (a queue of the other type is a one-line error).

nameko 2.14 sends an RPC's reply from the worker's result handler. If the
broker is away at that moment (restarting, or hung and then gone), the
publish fails after its retries, the exception ends the worker's thread, and
nameko kills the whole container: a broker outage that caught a call in
flight stopped the service for good. Here that failure is logged instead;
the caller gets no reply (it times out, as it would have anyway).

A request the broker delivers again after it ran here is not run twice.
nameko acks a request after its reply, on the connection it came by; when
that connection is gone (a node paused by a partition, stopped, or cut off)
the ack is skipped or fails, the broker gives the request back, and nameko
ran it again: a create_orders call made its orders twice, the caller seeing
only one set (found by the partition suite, tests/partitions). Each process
keeps the replies of its last ANSWERED_CALLS calls by correlation id (and
a mark on those still running): a request it has answered gets that reply
again, and is acked, without running; one still running here is acked and
left to the copy that runs. A correlation id names one call, so this also
covers a request a client published twice. (A request redelivered to another process of the same
service is still run there: see docs/guarantees.md.)

Its queue consumer subscribes again when the broker stops delivering to it
(order_pipeline.extensions.resubscribing_consumer).
"""

import logging
from collections import OrderedDict

from nameko.rpc import Rpc, RpcConsumer

from order_pipeline.extensions.resubscribing_consumer import ResubscribingQueueConsumer
from order_pipeline.queues import declare_at_start, durable_queue
from order_pipeline.settings import queue_type

log = logging.getLogger(__name__)

# The replies a process keeps to answer a redelivered request (a few seconds
# of calls at the rates here; a redelivery follows within a reconnection).
ANSWERED_CALLS = 1000


class AnsweredCalls:
    """The calls seen lately, by the request's correlation id (unique to a
    call): the reply of each answered one, a mark on each still running."""

    RUNNING = object()

    def __init__(self, size=ANSWERED_CALLS):
        self.size = size
        self._replies = OrderedDict()

    def begin(self, correlation_id):
        if correlation_id is not None:
            self._keep(correlation_id, self.RUNNING)

    def remember(self, correlation_id, result, exc_info):
        if correlation_id is None:
            return
        # Without the traceback: a kept reply must not keep the worker's frames.
        kept = None if exc_info is None else (exc_info[0], exc_info[1], None)
        self._keep(correlation_id, (result, kept))

    def _keep(self, correlation_id, value):
        self._replies[correlation_id] = value
        while len(self._replies) > self.size:
            self._replies.popitem(last=False)

    def running(self, message):
        return self._replies.get(message.properties.get("correlation_id")) is self.RUNNING

    def reply_to(self, message):
        """The kept (result, exc_info) of a request seen before, or None."""
        reply = self._replies.get(message.properties.get("correlation_id"))
        return None if reply is self.RUNNING else reply


class TypedRpcConsumer(RpcConsumer):
    queue_consumer = ResubscribingQueueConsumer()

    def setup(self):
        if self.queue is not None:  # shared: set up once for all methods
            return
        self.answered = AnsweredCalls()
        super().setup()  # names the queue and registers with the consumer
        # The consumer reads the queue only when it starts: replace nameko's
        # classic declaration with the typed one.
        config = self.container.config
        self.queue = durable_queue(
            self.queue.name,
            queue_type(config),
            self.queue.exchange,
            routing_key=self.queue.routing_key,
        )
        declare_at_start(config, [self.queue])


class ReplyTolerantRpc(Rpc):
    rpc_consumer = TypedRpcConsumer()

    def handle_message(self, body, message):
        calls = self.rpc_consumer.answered
        correlation_id = message.properties.get("correlation_id")
        answer = calls.reply_to(message)
        if answer is not None:
            log.warning(
                "%s: request %s delivered again after it ran here: its reply sent again, "
                "not run twice",
                self.method_name,
                correlation_id,
            )
            return self.handle_result(message, None, *answer)
        if calls.running(message):
            # Delivered again (or published twice by a client that retried)
            # while the first copy runs: that one answers.
            log.warning(
                "%s: request %s delivered again while it runs here: not run twice",
                self.method_name,
                correlation_id,
            )
            self._ack(message, None)
            return None
        calls.begin(correlation_id)
        return super().handle_message(body, message)

    def handle_result(self, message, worker_ctx, result, exc_info):
        self.rpc_consumer.answered.remember(
            message.properties.get("correlation_id"), result, exc_info
        )
        try:
            return super().handle_result(message, worker_ctx, result, exc_info)
        except Exception as exc:  # whatever it is, it is no reason to stop
            log.warning(
                "%s ran, but its reply could not be sent: %s: %s",
                worker_ctx,
                type(exc).__name__,
                exc,
            )
            # The call has run: take the request off the queue rather than
            # run it again. If the connection is gone (a cluster node that
            # stopped under it) the ack fails too, and that must not stop
            # the service either: the broker gives the request back, or
            # drops it once expired.
            self._ack(message, worker_ctx)
            return result, exc_info

    def _ack(self, message, worker_ctx):
        try:
            self.rpc_consumer.queue_consumer.ack_message(message)
        except Exception as ack_exc:  # the connection is gone
            log.warning(
                "%s: the request could not be acknowledged either: %s: %s",
                worker_ctx or self.method_name,
                type(ack_exc).__name__,
                ack_exc,
            )


rpc = ReplyTolerantRpc.decorator

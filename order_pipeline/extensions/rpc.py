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
"""

import logging

from nameko.rpc import Rpc, RpcConsumer

from order_pipeline.queues import declare_at_start, durable_queue
from order_pipeline.settings import queue_type

log = logging.getLogger(__name__)


class TypedRpcConsumer(RpcConsumer):
    def setup(self):
        if self.queue is not None:  # shared: set up once for all methods
            return
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

    def handle_result(self, message, worker_ctx, result, exc_info):
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
            try:
                self.rpc_consumer.queue_consumer.ack_message(message)
            except Exception as ack_exc:  # the connection is gone
                log.warning(
                    "%s: the request could not be acknowledged either: %s: %s",
                    worker_ctx,
                    type(ack_exc).__name__,
                    ack_exc,
                )
            return result, exc_info


rpc = ReplyTolerantRpc.decorator

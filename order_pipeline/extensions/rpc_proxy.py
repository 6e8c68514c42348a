"""RPC calls that give up.

nameko 2.14's RpcProxy waits for a reply forever, so a stopped service would
hang every caller. `TimeoutRpcProxy` waits RPC_TIMEOUT_SECONDS and then
raises `RpcTimeout`; the request carries the same TTL, so a service that
comes back later does not act on a request its caller has given up on.
Requests are not persistent, for the same reason.

Its replies come back on a `ReplyQueueListener` queue: nameko's reply queue
is a classic one, lost with its node in a cluster (the proxy would then
wait in vain on a queue that is gone); this one has the type QUEUE_TYPE
names. It is durable and shared (a quorum queue can be neither exclusive nor
auto-delete), named for its container (`rpc.reply-<service>-<uuid>`, as
nameko names it), and `x-expires` makes the broker delete it once it has
had no consumer for RPC_REPLY_QUEUE_EXPIRES_SECONDS: a container that died
does not leave its queue behind.
"""

import eventlet
from nameko.constants import NON_PERSISTENT
from nameko.exceptions import UnknownService, deserialize_to_instance
from nameko.rpc import ReplyListener, RpcProxy

from order_pipeline.broker import check_broker
from order_pipeline.nameko_internals import forget_reply
from order_pipeline.queues import declare_at_start, durable_queue
from order_pipeline.settings import queue_type, rpc_reply_queue_expires_seconds, rpc_timeout_seconds


# Registered so that, passed on through another RPC hop, they arrive as
# these types rather than as a generic RemoteError.
@deserialize_to_instance
class RpcTimeout(Exception):
    """The remote service did not answer in time."""


@deserialize_to_instance
class ServiceUnavailable(Exception):
    """Nothing is listening for the remote service (it is not running)."""


class ReplyQueueListener(ReplyListener):
    def setup(self):
        config = self.container.config
        super().setup()  # names the queue and registers with the consumer
        expires_ms = int(rpc_reply_queue_expires_seconds(config) * 1000)
        self.queue = durable_queue(
            self.queue.name,
            queue_type(config),
            self.queue.exchange,
            routing_key=self.routing_key,
            arguments={"x-expires": expires_ms},
        )
        declare_at_start(config, [self.queue])


class TimeoutRpcProxy(RpcProxy):
    rpc_reply_listener = ReplyQueueListener()

    def setup(self):
        check_broker(self.container.config)
        super().setup()
        self.timeout = rpc_timeout_seconds(self.container.config)
        # kombu takes the per-message TTL in seconds.
        self.options["expiration"] = self.timeout
        # A request nobody waits for after the timeout need not survive a
        # broker restart, and a persistent one in the durable RPC queue makes
        # the publisher confirm wait for the broker's disk sync.
        self.options["delivery_mode"] = NON_PERSISTENT

    def get_dependency(self, worker_ctx):
        return _TimeoutServiceProxy(super().get_dependency(worker_ctx), self.timeout)


class _TimeoutServiceProxy:
    def __init__(self, service_proxy, timeout):
        self._service_proxy = service_proxy
        self._timeout = timeout

    def __getattr__(self, method_name):
        method = getattr(self._service_proxy, method_name)
        service_name = self._service_proxy.service_name
        timeout = self._timeout

        def call(*args, **kwargs):
            reply = None
            try:
                with eventlet.Timeout(timeout):
                    reply = method.call_async(*args, **kwargs)
                    return reply.result()
            except eventlet.Timeout:
                if reply is not None:
                    forget_reply(method.reply_listener, reply.reply_event)
                raise RpcTimeout(
                    f"{service_name}.{method_name} did not answer within {timeout} s"
                ) from None
            except UnknownService:
                raise ServiceUnavailable(f"{service_name} is not running") from None

        return call

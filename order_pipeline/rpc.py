"""RPC calls that give up.

nameko 2.14's RpcProxy waits for a reply forever, so a stopped service would
hang every caller. `TimeoutRpcProxy` waits RPC_TIMEOUT_SECONDS and then
raises `RpcTimeout`; the request carries the same TTL, so a service that
comes back later does not act on a request its caller has given up on.
"""
import eventlet
from nameko.exceptions import UnknownService
from nameko.rpc import RpcProxy

from order_pipeline.broker import check_broker
from order_pipeline.config import setting


class RpcTimeout(Exception):
    """The remote service did not answer in time."""


class ServiceUnavailable(Exception):
    """Nothing is listening for the remote service (it is not running)."""


class TimeoutRpcProxy(RpcProxy):
    def setup(self):
        check_broker(self.container.config)
        super().setup()
        self.timeout = setting(
            self.container.config, "RPC_TIMEOUT_SECONDS", float, minimum=0.001)
        # kombu takes the per-message TTL in seconds.
        self.options["expiration"] = self.timeout

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
            try:
                with eventlet.Timeout(timeout):
                    return method.call_async(*args, **kwargs).result()
            except eventlet.Timeout:
                raise RpcTimeout("{}.{} did not answer within {} s".format(
                    service_name, method_name, timeout)) from None
            except UnknownService:
                raise ServiceUnavailable(
                    "{} is not running".format(service_name)) from None

        return call

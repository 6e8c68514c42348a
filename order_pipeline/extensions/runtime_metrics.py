"""Each service process's own Prometheus metrics, on an address of its own.

    runtime_metrics = RuntimeMetrics(processor_metrics_address)

With its setting empty (the default) it does nothing. With `[host:]port` it
serves prometheus_client's WSGI app (any path; the text format, or
OpenMetrics when the Accept header names it) from an eventlet WSGI server
that starts and stops with the service's container:

- `order_pipeline_worker_duration_seconds{service, entrypoint, kind, outcome}`:
  a histogram of every worker (an RPC call, an event batch, a timer tick, an
  HTTP request), from `worker_setup` to `worker_result`: the method, and for
  the event handler the settling of its messages too;
- `order_pipeline_workers_active{service}` and
  `order_pipeline_workers_max{service}`: the worker pool's use;
- what the service's own dependencies count (a dependency that is a
  Prometheus collector): the gateway's token refusals,
  `order_pipeline_gateway_auth_refusals_total{reason}`;
- `process_*` (CPU seconds, resident and virtual memory, open files, start
  time) and `python_*` (garbage collection, version), from
  prometheus_client's own collectors.

prometheus_client's `start_http_server` runs a server thread, which under
eventlet's monkey-patching is a greenthread that blocks on a socket the hub
never wakes: it does not work here. Each container has a registry of its
own, since `make run` runs the three services in one process.
"""

import logging
import time

import eventlet
import eventlet.wsgi
from eventlet.greenpool import GreenPool
from greenlet import GreenletExit
from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from nameko.timer import Timer
from nameko.web.handlers import HttpRequestHandler
from prometheus_client import (
    CollectorRegistry,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    make_wsgi_app,
)

from order_pipeline.errors import StartupError

log = logging.getLogger(__name__)

# Seconds: a worker takes milliseconds; an RPC call that waits for a service
# that is away takes up to RPC_TIMEOUT_SECONDS.
DURATION_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
ENTRYPOINT_KINDS = (
    (Rpc, "rpc"),
    (EventHandler, "event"),
    (Timer, "timer"),
    (HttpRequestHandler, "http"),
)
# A scrape is one short request: no keep-alive, so that stopping the server
# never waits for an idle connection, and a client that stalls is dropped.
SOCKET_TIMEOUT_SECONDS = 10
MAX_CONNECTIONS = 16


def entrypoint_kind(entrypoint) -> str:
    for cls, kind in ENTRYPOINT_KINDS:
        if isinstance(entrypoint, cls):
            return kind
    return type(entrypoint).__name__.lower()


def runtime_registry(service: str, max_workers: int, active_workers) -> tuple:
    """(registry, worker duration histogram) for one service container;
    `active_workers()` says how many workers run now."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    durations = Histogram(
        "order_pipeline_worker_duration_seconds",
        "How long each worker of this service took, by entrypoint (method), kind and outcome.",
        ["service", "entrypoint", "kind", "outcome"],
        buckets=DURATION_BUCKETS,
        registry=registry,
    )
    Gauge(
        "order_pipeline_workers_active",
        "Workers of this service running now.",
        ["service"],
        registry=registry,
    ).labels(service).set_function(active_workers)
    Gauge(
        "order_pipeline_workers_max",
        "Size of this service's worker pool (max_workers).",
        ["service"],
        registry=registry,
    ).labels(service).set(max_workers)
    return registry, durations


def listen(address):
    """A listening socket on a MetricsAddress, or a StartupError naming its setting."""
    try:
        return eventlet.listen((address.host, address.port), reuse_port=False)
    except OSError as exc:
        raise StartupError(
            f"cannot listen on {address.setting}={address.host}:{address.port}: "
            f"{exc.strerror or exc}; set {address.setting}"
        ) from None


class RuntimeMetrics(DependencyProvider):
    """`RuntimeMetrics(read_address)`: `read_address(config)` is the
    service's settings reader, a MetricsAddress or None (off)."""

    def __init__(self, read_address):
        self.read_address = read_address

    def setup(self):
        self.address = self.read_address(self.container.config)
        self.started = {}  # worker_ctx -> time.perf_counter() at its setup
        self.socket = self.server = None
        if self.address is None:
            return
        service = self.container.service_name
        self.registry, durations = runtime_registry(
            service, self.container.max_workers, lambda: len(self.started)
        )
        self.durations = durations
        self.service = service
        # The service's other dependencies that count something of their
        # own (a Prometheus collector: a `collect()` method), such as the
        # gateway's token refusals, are served here too.
        for dependency in self.container.dependencies:
            if dependency is not self and callable(getattr(dependency, "collect", None)):
                self.registry.register(dependency)
        self.socket = listen(self.address)

    def start(self):
        if self.socket is not None:
            self.server = self.container.spawn_managed_thread(self._serve)
            log.info(
                "%s runtime metrics on http://%s:%s/metrics",
                self.service,
                *self.socket.getsockname()[:2],
            )

    def _serve(self):
        eventlet.wsgi.server(
            self.socket,
            make_wsgi_app(self.registry),
            log=log,
            log_output=False,
            keepalive=False,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            custom_pool=GreenPool(MAX_CONNECTIONS),
            debug=False,
        )

    def stop(self):
        """Stop serving and free the port before the container stops."""
        if self.server is not None:
            self.server.kill()  # the server closes its socket on the way out
            try:
                self.server.wait()
            except GreenletExit:
                pass
            self.server = None
        if self.socket is not None:
            self.socket.close()
            self.socket = None

    def kill(self):
        self.stop()

    def worker_setup(self, worker_ctx):
        if self.address is not None:
            self.started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self.started.get(worker_ctx)
        if started is not None:
            entrypoint = worker_ctx.entrypoint
            self.durations.labels(
                self.service,
                entrypoint.method_name,
                entrypoint_kind(entrypoint),
                "ok" if exc_info is None else "error",
            ).observe(time.perf_counter() - started)

    def worker_teardown(self, worker_ctx):
        self.started.pop(worker_ctx, None)

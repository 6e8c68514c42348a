"""Every running instance of a service says so, every few seconds.

    heartbeat = Heartbeat()      # on every service class

    @record_heartbeats           # on the one service that keeps them
    def record_heartbeat(self, heartbeat): ...

`Heartbeat` gives its container an identity (`instance_of`: a random id,
the host, the pid, the code's version and commit, when it started) and
publishes it every HEARTBEAT_INTERVAL_SECONDS with what the instance is
doing: its workers running against its pool, and for a service that
consumes events (the processor) when its handler last took one, how many
were delivered to it and not yet handled, and how many are ready on its
queue, all read at the moment of sending, so that a reader can tell a
consumer that stopped taking events from one that has nothing to take.
It runs in a greenthread of its own with a broker connection of its own,
outside the worker pool, so a service whose workers are all busy still
beats. A heartbeat the broker does not take is not retried: the next one
follows.

Heartbeats go to the topic exchange HEARTBEAT_EXCHANGE, routed by the
sender's service name (each service's broker user may publish under its own
name only, order_pipeline/identities.py), transient, and expire after
HEARTBEAT_TTL_SECONDS on HEARTBEAT_QUEUE: while no processor consumes them,
the queue holds the last minute's, not a backlog. `HeartbeatConsumer`, the
entrypoint behind `@record_heartbeats`, hands each one to its method with
the routing key as its service, so no instance can report for another
service. It acks whatever the method does: a heartbeat lost is replaced by
the next.
"""

import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass

import eventlet
from amqp.exceptions import NotFound
from greenlet import GreenletExit
from kombu import Exchange, Producer, Queue
from nameko.extensions import DependencyProvider
from nameko.messaging import Consumer

from order_contract import HEARTBEAT_EXCHANGE, HEARTBEAT_QUEUE
from order_pipeline.broker import broker, close_connection, connect, mask_uri
from order_pipeline.config import setting
from order_pipeline.extensions.reliable_events import ReliableEventHandler
from order_pipeline.queues import close_quietly, declare_at_start, durable_queue
from order_pipeline.settings import queue_type
from order_pipeline.times import iso_z, utc_now
from order_pipeline.version import VERSION, git_commit

log = logging.getLogger(__name__)

# A heartbeat nobody took within this is of no use any more.
HEARTBEAT_TTL_SECONDS = 60
TRANSIENT = 1  # AMQP delivery mode: not written to disk
CONNECT_TIMEOUT_SECONDS = 5


def heartbeat_interval_seconds(config: dict) -> float:
    """HEARTBEAT_INTERVAL_SECONDS: how often every instance sends one."""
    return setting(config, "HEARTBEAT_INTERVAL_SECONDS", float, minimum=0.1)


def heartbeat_exchange() -> Exchange:
    return Exchange(HEARTBEAT_EXCHANGE, type="topic", durable=True)


def heartbeat_queue(kind: str) -> Queue:
    """Where the heartbeats of every service wait for a processor (bound
    with `*`: any one service name)."""
    return durable_queue(
        HEARTBEAT_QUEUE,
        kind,
        heartbeat_exchange(),
        routing_key="*",
        arguments={"x-message-ttl": HEARTBEAT_TTL_SECONDS * 1000},
    )


@dataclass(frozen=True)
class InstanceIdentity:
    """Who a running service container is, for as long as it runs."""

    instance_id: str
    service: str
    host: str
    pid: int
    version: str
    commit: str | None
    started_at: str  # ISO 8601 UTC

    def as_dict(self) -> dict:
        return {
            "instance_id": self.instance_id,
            "host": self.host,
            "pid": self.pid,
            "version": self.version,
            "commit": self.commit,
            "started_at": self.started_at,
        }


def new_identity(service: str) -> InstanceIdentity:
    return InstanceIdentity(
        instance_id=secrets.token_hex(8),
        service=service,
        host=socket.gethostname()[:255],
        pid=os.getpid(),
        version=VERSION,
        commit=git_commit(),
        started_at=iso_z(utc_now()),
    )


def instance_of(container) -> InstanceIdentity:
    """The identity of a service container: its Heartbeat's. (One per
    container, not per process: `make run` runs three services in one
    process, and the tests two processors.)"""
    for dependency in container.dependencies:
        if isinstance(dependency, Heartbeat):
            return dependency.identity
    raise LookupError(f"{container.service_name} has no Heartbeat dependency")


class Heartbeat(DependencyProvider):
    """Sends this container's heartbeats; injects its InstanceIdentity."""

    def __init__(self):
        self._identity = None

    @property
    def identity(self) -> InstanceIdentity:
        # Made on first use: another extension may ask (instance_of) before
        # this one is set up.
        if self._identity is None:
            self._identity = new_identity(self.container.service_name)
        return self._identity

    def setup(self):
        config = self.container.config
        self.interval = heartbeat_interval_seconds(config)
        self.broker = broker(config)
        self.event_handlers = [
            entrypoint
            for entrypoint in self.container.entrypoints
            if isinstance(entrypoint, ReliableEventHandler)
        ]
        self.running_workers = set()
        self.last_taken = time.monotonic()
        self.connection = self.producer = None
        self.failing = False
        self.thread = None

    def start(self):
        self.last_taken = time.monotonic()  # "since it started" until it takes one
        self.thread = self.container.spawn_managed_thread(self._beat_until_stopped)

    def stop(self):
        if self.thread is not None:
            self.thread.kill()
            try:
                self.thread.wait()
            except GreenletExit:
                pass
            self.thread = None
        self._disconnect()

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        return self.identity

    def worker_setup(self, worker_ctx):
        self.running_workers.add(worker_ctx)
        if worker_ctx.entrypoint in self.event_handlers:
            self.last_taken = time.monotonic()

    def worker_teardown(self, worker_ctx):
        self.running_workers.discard(worker_ctx)

    def report(self, queue_ready: int | None) -> dict:
        """The heartbeat (order_contract.Heartbeat, without its service)."""
        consumes = bool(self.event_handlers)
        return {
            **self.identity.as_dict(),
            "workers_active": len(self.running_workers),
            "workers_max": self.container.max_workers,
            "seconds_since_event": (
                round(time.monotonic() - self.last_taken, 3) if consumes else None
            ),
            "events_waiting": (
                sum(getattr(handler, "events_waiting", 0) for handler in self.event_handlers)
                if consumes
                else None
            ),
            "queue_ready": queue_ready,
        }

    def beat(self) -> bool:
        """Send one heartbeat; False if the broker did not take it."""
        try:
            if self.connection is None:
                self._connect()
            self.producer.publish(
                self.report(self._queue_ready()),
                routing_key=self.identity.service,
                serializer="json",
                delivery_mode=TRANSIENT,
            )
        except Exception as exc:  # any broker trouble: try again next time
            self._disconnect()
            if not self.failing:
                log.warning(
                    "%s: heartbeat not sent (%s: %s); trying again every %s s",
                    self.identity.service,
                    type(exc).__name__,
                    mask_uri(str(exc)),
                    self.interval,
                )
            self.failing = True
            return False
        if self.failing:
            log.info("%s: heartbeats sent again", self.identity.service)
        self.failing = False
        return True

    def _beat_until_stopped(self):
        while True:
            self.beat()
            eventlet.sleep(self.interval)

    def _connect(self):
        self.connection = connect(self.broker, connect_timeout=CONNECT_TIMEOUT_SECONDS)
        self.producer = Producer(self.connection.channel(), exchange=heartbeat_exchange())
        self.producer.declare()

    def _disconnect(self):
        connection, self.connection, self.producer = self.connection, None, None
        if connection is not None:
            close_connection(connection)

    def _queue_ready(self) -> int | None:
        """Messages ready on the event handlers' queues (None without any,
        or when the broker does not say)."""
        if not self.event_handlers:
            return None
        ready = 0
        for handler in self.event_handlers:
            # A passive declare of a missing queue closes its channel.
            channel = self.connection.channel()
            try:
                ready += channel.queue_declare(queue=handler.queue.name, passive=True).message_count
            except NotFound:
                return None
            finally:
                close_quietly(channel)
        return ready


class HeartbeatConsumer(Consumer):
    """nameko's Consumer on HEARTBEAT_QUEUE, declared with QUEUE_TYPE; the
    method gets each heartbeat with its routing key as its `service`."""

    def __init__(self, **kwargs):
        super().__init__(queue=None, requeue_on_error=False, **kwargs)

    def setup(self):
        config = self.container.config
        self.queue = heartbeat_queue(queue_type(config))
        declare_at_start(config, [self.queue])
        super().setup()

    def handle_message(self, body, message):
        if isinstance(body, dict):
            body = {**body, "service": message.delivery_info.get("routing_key")}
        super().handle_message(body, message)

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        # nameko's ack forgives only amqp's own ConnectionError: a socket the
        # broker reset under it (a restart, a node stopped) raised
        # ConnectionResetError here, and nameko killed the whole service for
        # it. The heartbeat is transient and the next one follows.
        try:
            return super().handle_result(message, worker_ctx, result, exc_info)
        except OSError as exc:
            log.warning(
                "a heartbeat could not be acknowledged (%s: %s); the next one follows",
                type(exc).__name__,
                exc,
            )
            return result, exc_info


record_heartbeats = HeartbeatConsumer.decorator

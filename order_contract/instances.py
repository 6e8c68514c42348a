"""Service instances and their timing: what each running instance reports
about itself, and what the processor answers about them all.

Every running instance of every service (order_pipeline.extensions.heartbeats)
publishes a `Heartbeat` every HEARTBEAT_INTERVAL_SECONDS to the topic
exchange HEARTBEAT_EXCHANGE, with its service's name as the routing key. The
processors consume them from HEARTBEAT_QUEUE and keep the last one of each
instance in their table, so that any gateway, restarted or not, reads the
same list:

    order_processor.service_instances() -> [ServiceInstance, ...]
    order_processor.service_timing()    -> ServiceTiming

Which instances are silent or stalled is the reader's call (the gateway's
INSTANCE_SILENT_SECONDS and PROCESSOR_STALL_SECONDS): these are the facts
it decides on.
"""

import re
from typing import TypedDict

from order_contract.errors import InvalidPayload
from order_contract.limits import is_int
from order_contract.services import GATEWAY, GENERATOR, PROCESSOR

HEARTBEAT_EXCHANGE = "heartbeats"
HEARTBEAT_QUEUE = f"heartbeats--{PROCESSOR}"
# The services that send heartbeats, in the order they are listed.
MONITORED_SERVICES = (GENERATOR, PROCESSOR, GATEWAY)
# An instance silent this long is forgotten: no longer listed, its row deleted.
INSTANCE_RETENTION_SECONDS = 3600
# The timing figures cover this many seconds back from now.
TIMING_WINDOW_SECONDS = 600

INSTANCE_ID = re.compile(r"^[0-9a-f]{16}$")
COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
MAX_TEXT = {"host": 255, "version": 64}


class Heartbeat(TypedDict):
    """One instance's report of itself, as it sends it (its service is the
    message's routing key, added by the consumer)."""

    instance_id: str  # 16 hex digits, new each time a service starts
    service: str  # one of MONITORED_SERVICES
    host: str
    pid: int
    version: str  # the package's version
    commit: str | None  # the git commit it runs, when known
    started_at: str  # ISO 8601 UTC
    workers_active: int  # its nameko workers running now
    workers_max: int  # its worker pool (max_workers)
    # For an instance that consumes events (a processor), else None: seconds
    # since its handler last took an event (or since it started), events
    # delivered to it but not yet handled, and the events ready on its queue,
    # all read as the heartbeat was sent.
    seconds_since_event: float | None
    events_waiting: int | None
    queue_ready: int | None


class ServiceInstance(Heartbeat):
    """An instance's last heartbeat as the processor recorded it, with when
    (its own database's clock, so every reader measures from one clock)."""

    last_seen_at: str  # ISO 8601 UTC
    seconds_since_seen: float


class TimingFigures(TypedDict):
    """The OrderCreated handler's figures over the last TIMING_WINDOW_SECONDS.
    processing time: the handler itself, from taking a batch to writing its
    results; critical time: from the order's creation to its result
    stored. Both are averages per order; None with no order in the window."""

    processed: int
    throughput_per_second: float
    processing_time_ms: float | None
    critical_time_ms: float | None
    retries: int
    retries_per_second: float


class ServiceTiming(TypedDict):
    window_seconds: int
    services: dict[str, TimingFigures]  # by service: the processor's, every instance's sum


def validate_heartbeat(payload: object) -> Heartbeat:
    """`payload` as a Heartbeat, or InvalidPayload naming what is wrong."""
    if not isinstance(payload, dict):
        raise InvalidPayload(f"a heartbeat is an object, got {payload!r:.100}")
    problems = []

    def check(name, valid):
        if not valid(payload.get(name)):
            problems.append(f"{name}={payload.get(name)!r:.60}")

    def text(name):
        return lambda value: isinstance(value, str) and 0 < len(value) <= MAX_TEXT[name]

    def count(minimum):
        return lambda value: is_int(value) and value >= minimum

    def optional(valid):
        return lambda value: value is None or valid(value)

    check("instance_id", lambda value: isinstance(value, str) and INSTANCE_ID.match(value))
    check("service", lambda value: value in MONITORED_SERVICES)
    check("host", text("host"))
    check("pid", count(1))
    check("version", text("version"))
    check("commit", optional(lambda value: isinstance(value, str) and COMMIT.match(value)))
    check("started_at", lambda value: isinstance(value, str) and ISO_Z.match(value))
    check("workers_active", count(0))
    check("workers_max", count(1))
    check(
        "seconds_since_event",
        optional(
            lambda value: (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and 0 <= value < 10**9
            )
        ),
    )
    check("events_waiting", optional(count(0)))
    check("queue_ready", optional(count(0)))
    if problems:
        raise InvalidPayload("heartbeat with " + ", ".join(problems))
    return {name: payload.get(name) for name in Heartbeat.__annotations__}

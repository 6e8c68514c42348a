"""Service instances and timing, as the gateway shows them: on the console
(the snapshot's `instances` and `timing`), at GET /instances and GET /timing,
and in the Prometheus exposition.

Both come from the processors' tables (`order_processor.service_instances`,
`order_processor.service_timing`), so a restarted gateway shows the same.
The gateway adds one thing, each instance's state, by its InstanceRules:

- silent: no heartbeat recorded for more than INSTANCE_SILENT_SECONDS (by
  the database's clock: the processor measures it);
- stalled: a processor that still beats, but whose last heartbeat says its
  handler has taken no event for PROCESSOR_STALL_SECONDS or more while
  events waited for it: delivered to it and not handled, or ready on its
  queue. An idle processor with nothing to take is not stalled, nor is one
  whose events another processor takes (it has none waiting);
- live: the rest.
"""

from prometheus_client.core import GaugeMetricFamily

from gateway.settings import InstanceRules
from order_contract import MONITORED_SERVICES, TIMING_WINDOW_SECONDS

LIVE, SILENT, STALLED = "live", "silent", "stalled"
STATES = (LIVE, SILENT, STALLED)
# The window's label in Prometheus: TIMING_WINDOW_SECONDS as a duration.
WINDOW = f"{TIMING_WINDOW_SECONDS // 60}m"


def instance_state(instance: dict, rules: InstanceRules) -> str:
    if instance["seconds_since_seen"] > rules.silent_seconds:
        return SILENT
    since_event = instance["seconds_since_event"]
    waiting = (instance["events_waiting"] or 0) + (instance["queue_ready"] or 0)
    if since_event is not None and since_event >= rules.stall_seconds and waiting > 0:
        return STALLED
    return LIVE


def instances_view(instances: list, rules: InstanceRules) -> dict:
    """GET /instances: every instance with its state (generators first, then
    processors, then gateways), and each service's count of instances in each
    state (every service named, 0 included)."""
    items = [{**instance, "state": instance_state(instance, rules)} for instance in instances]
    # The services in the pipeline's order, each one's instances as the
    # processor lists them (oldest first).
    order = {service: index for index, service in enumerate(MONITORED_SERVICES)}
    items.sort(key=lambda item: order.get(item["service"], len(order)))
    services = {service: dict.fromkeys(STATES, 0) for service in MONITORED_SERVICES}
    for item in items:
        services.setdefault(item["service"], dict.fromkeys(STATES, 0))[item["state"]] += 1
    return {
        "silent_after_seconds": rules.silent_seconds,
        "stall_after_seconds": rules.stall_seconds,
        "services": services,
        "instances": items,
    }


def read_instances(processor, rules: InstanceRules):
    """A call for gateway.snapshot.ask_all: the processor's instances as
    instances_view gives them."""
    return lambda: instances_view(processor.service_instances(), rules)


def console_view(instances, timing) -> dict:
    """The snapshot's `instances` and `timing` from the answers
    (gateway.snapshot.Answer) of read_instances and service_timing: each
    with the state of its read, and no figures when it could not be read."""
    return {
        "instances": {"state": instances.state, **(instances.value if instances.up else {})},
        "timing": {"state": timing.state, **(timing.value if timing.up else {})},
    }


# --- Prometheus --------------------------------------------------------------------------


def by_service(name, documentation):
    return GaugeMetricFamily(name, documentation, labels=["service"])


def instance_families(view: dict) -> list:
    """Instances per service by state (live counts every instance that beats,
    stalled ones included)."""
    heard = by_service(
        "order_pipeline_service_instances",
        "Instances of the service whose heartbeats arrive (stalled ones included).",
    )
    silent = by_service(
        "order_pipeline_service_instances_silent",
        "Instances of the service with no heartbeat for longer than INSTANCE_SILENT_SECONDS "
        "(forgotten after an hour).",
    )
    stalled = by_service(
        "order_pipeline_service_instances_stalled",
        "Instances that beat but have taken no event for PROCESSOR_STALL_SECONDS while "
        "events waited for them.",
    )
    for service, counts in view["services"].items():
        heard.add_metric([service], counts[LIVE] + counts[STALLED])
        silent.add_metric([service], counts[SILENT])
        stalled.add_metric([service], counts[STALLED])
    return [heard, silent, stalled]


def timing_families(timing: dict) -> list:
    """Each service's timing over the window, as gauges labelled with it; an
    average over no order is left out."""
    window = f"over the last {WINDOW}"

    def family(name, documentation):
        return GaugeMetricFamily(name, documentation, labels=["service", "window"])

    throughput = family(
        "order_pipeline_throughput_per_second", f"Orders processed per second, {window}."
    )
    retries = family(
        "order_pipeline_retries_per_second", f"Events sent to be retried per second, {window}."
    )
    processing = family(
        "order_pipeline_processing_time_seconds",
        f"Average time the handler took per order, from taking its batch to writing its "
        f"result, {window}.",
    )
    critical = family(
        "order_pipeline_critical_time_seconds",
        f"Average time from an order's creation to its result stored, {window}.",
    )
    for service, figures in timing["services"].items():
        labels = [service, WINDOW]
        throughput.add_metric(labels, figures["throughput_per_second"])
        retries.add_metric(labels, figures["retries_per_second"])
        if figures["processing_time_ms"] is not None:
            processing.add_metric(labels, figures["processing_time_ms"] / 1000)
        if figures["critical_time_ms"] is not None:
            critical.add_metric(labels, figures["critical_time_ms"] / 1000)
    return [throughput, retries, processing, critical]


def monitoring_families(instances, timing) -> list:
    """The families the answers of read_instances and service_timing
    (gateway.snapshot.Answer) support: none of a read that failed."""
    families = []
    if instances.up:
        families += instance_families(instances.value)
    if timing.up:
        families += timing_families(timing.value)
    return families

"""GET /metrics for Prometheus: the pipeline-wide figures in the Prometheus
text format or OpenMetrics, for a client whose Accept header asks for one of
them (as a Prometheus server's does); any other request gets the JSON
/metrics has always answered.

Every figure comes from shared state, so it is the pipeline's however many
generators and processors run, and any gateway gives the same answer:

- the generator's status (`order_generator.status`: orders created, running,
  interval) and outbox backlog (`order_generator.outbox_backlog`);
- the processor's tables (`order_processor.telemetry`: orders processed,
  average execution price, events retried and dead-lettered, the latency
  histogram), its count of parked dead letters
  (`order_processor.dead_letter_overview`) and their failure groups
  (`order_processor.dead_letter_groups`: the GROUP_SERIES largest, one
  series each);
- the broker (`gateway.queue_figures`: depth and consumers of the event
  queue);
- the service instances and the handler's timing over the last 10 minutes
  (`gateway.monitoring`, from the processor's tables).

They are read at once, as the console's snapshot is (`gateway.snapshot`). A
source that does not answer leaves its figures out (never a guess) and shows
as `order_pipeline_component_up{component=...} 0`; the scrape itself still
succeeds, so the alerts on what did answer keep working.
"""

from prometheus_client import exposition
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.openmetrics import exposition as openmetrics_exposition
from prometheus_client.utils import floatToGoString
from werkzeug.wrappers import Response

from gateway.monitoring import monitoring_families, read_instances
from gateway.snapshot import ask_all, dead_letter_count
from order_contract import DEFAULT_GROUP_LIMIT

# Failure groups exposed, the largest first: one series each, so bounded.
GROUP_SERIES = DEFAULT_GROUP_LIMIT
GROUP_LABELS = ["group", "error_type", "frame", "cause"]
MAX_CAUSE_LABEL_CHARS = 120
JSON = "application/json"
OPENMETRICS = "application/openmetrics-text"
PROMETHEUS_TEXT = "text/plain"
# On a tie (no Accept header, `*/*`) the first wins: a client that asks for
# nothing in particular gets JSON, as before.
OFFERED = (JSON, OPENMETRICS, PROMETHEUS_TEXT)
ENCODERS = {
    OPENMETRICS: (
        openmetrics_exposition.generate_latest,
        openmetrics_exposition.CONTENT_TYPE_LATEST,
    ),
    PROMETHEUS_TEXT: (exposition.generate_latest, exposition.CONTENT_TYPE_PLAIN_0_0_4),
}


def parse_accept(header: str) -> list[tuple[str, str, float]]:
    """An Accept header as [(type, subtype, quality)]; entries that are not
    `type/subtype` are left out, a malformed quality counts as 0."""
    entries = []
    for part in header.split(","):
        media, *params = part.split(";")
        kind, slash, subtype = media.strip().lower().partition("/")
        if not slash or not kind or not subtype:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        entries.append((kind, subtype.strip(), quality))
    return entries


def quality(entries: list[tuple[str, str, float]], media_type: str) -> float:
    """The quality the client gives `media_type`: that of its most specific
    matching entry (`a/b` over `a/*` over `*/*`), the highest among equally
    specific ones (Prometheus lists OpenMetrics twice, one version each)."""
    kind, subtype = media_type.split("/")
    best_specificity, best = -1, 0.0
    for entry_kind, entry_subtype, entry_quality in entries:
        if (entry_kind, entry_subtype) == (kind, subtype):
            specificity = 2
        elif (entry_kind, entry_subtype) == (kind, "*"):
            specificity = 1
        elif (entry_kind, entry_subtype) == ("*", "*"):
            specificity = 0
        else:
            continue
        if specificity > best_specificity:
            best_specificity, best = specificity, entry_quality
        elif specificity == best_specificity:
            best = max(best, entry_quality)
    return best


def negotiate(accept: str | None) -> str:
    """JSON, OPENMETRICS or PROMETHEUS_TEXT: the one the Accept header
    prefers (by quality, then in OFFERED's order); JSON when it names none
    of them."""
    if not accept:
        return JSON
    entries = parse_accept(accept)
    chosen, chosen_quality = JSON, 0.0
    for media_type in OFFERED:
        offered_quality = quality(entries, media_type)
        if offered_quality > chosen_quality:
            chosen, chosen_quality = media_type, offered_quality
    return chosen


def read_pipeline_figures(generator, processor, queue_figures, instance_rules) -> dict:
    """Every source's Answer (see gateway.snapshot.ask), asked at once."""
    return ask_all(
        {
            "status": (generator.status,),
            "backlog": (generator.outbox_backlog,),
            "telemetry": (processor.telemetry,),
            "dead_letters": (processor.dead_letter_overview, 1),
            "groups": (processor.dead_letter_groups, GROUP_SERIES),
            "queues": (queue_figures,),
            "instances": (read_instances(processor, instance_rules),),
            "timing": (processor.service_timing,),
        }
    )


def gauge(name, documentation, value):
    return GaugeMetricFamily(name, documentation, value=value)


def counter(name, documentation, value):
    return CounterMetricFamily(name, documentation, value=value)


def pipeline_families(answers: dict) -> list:
    """The metric families the answers support (pure: no I/O)."""
    status, backlog = answers["status"], answers["backlog"]
    telemetry, queues = answers["telemetry"], answers["queues"]
    up = GaugeMetricFamily(
        "order_pipeline_component_up",
        "1 if the gateway could read this component's figures for this scrape, else 0 "
        "(its figures are then missing).",
        labels=["component"],
    )
    for component, answer in (("generator", status), ("processor", telemetry), ("broker", queues)):
        up.add_metric([component], 1 if answer.up else 0)
    families = [up]
    if status.up:
        families += [
            counter(
                "order_pipeline_orders_created_total",
                "Orders created (generator_state.orders_created).",
                status.value["orders_created"],
            ),
            gauge(
                "order_pipeline_generator_running",
                "1 while order generation is on, 0 while it is off.",
                1 if status.value["running"] else 0,
            ),
            gauge(
                "order_pipeline_generator_interval_seconds",
                "One order is created per this interval while generation is on.",
                status.value["interval_seconds"],
            ),
        ]
    if backlog.up:
        families.append(
            gauge(
                "order_pipeline_outbox_backlog",
                "Orders committed whose OrderCreated event the broker has not confirmed yet.",
                backlog.value,
            )
        )
    if telemetry.up:
        families += processor_families(telemetry.value)
    if queues.up:
        families += [
            gauge(
                "order_pipeline_event_queue_depth",
                "OrderCreated events ready on the processor's queue.",
                queues.value["queue_depth"],
            ),
            gauge(
                "order_pipeline_event_queue_consumers",
                "Consumers of the processor's event queue (one per running processor).",
                queues.value["consumers"],
            ),
        ]
    dead_letters = dead_letter_count(answers["dead_letters"])
    if dead_letters is not None:
        families.append(
            gauge(
                "order_pipeline_dead_letter_queue_depth",
                "Dead letters parked (the processor's table), not yet replayed or discarded.",
                dead_letters,
            )
        )
    families += monitoring_families(answers["instances"], answers["timing"])
    if answers["groups"].up:
        families += group_families(answers["groups"].value)
    return families


def group_families(answer: dict) -> list:
    """The dead letters' failure groups (order_contract.triage): one series
    per group, labelled with what the group is."""
    letters = GaugeMetricFamily(
        "order_pipeline_dead_letter_group_letters",
        "Parked dead letters in a failure group (same error type, normalised message "
        "and failing function).",
        labels=GROUP_LABELS,
    )
    recent = GaugeMetricFamily(
        "order_pipeline_dead_letter_group_recent_orders",
        "Distinct orders with a dead letter of the group set aside in the last "
        f"{answer['recent_seconds']} s.",
        labels=GROUP_LABELS,
    )
    for group in answer["groups"]:
        labels = [
            group["group"],
            group["error_type"],
            group["frame"] or "unknown",  # an empty label would be no label
            group["cause"][:MAX_CAUSE_LABEL_CHARS],
        ]
        letters.add_metric(labels, group["count"])
        recent.add_metric(labels, group["recent_orders"])
    count = gauge(
        "order_pipeline_dead_letter_groups",
        f"Failure groups among the parked dead letters (series for the {GROUP_SERIES} largest).",
        answer["count"],
    )
    return [count, letters, recent]


def processor_families(telemetry: dict) -> list:
    latency = telemetry["latency"]
    histogram = HistogramMetricFamily(
        "order_pipeline_end_to_end_latency_seconds",
        "Time from an order's creation to its processing result being stored.",
        buckets=[
            *((floatToGoString(bound), count) for bound, count in latency["buckets"]),
            ("+Inf", latency["count"]),
        ],
        sum_value=latency["sum_seconds"],
    )
    families = [
        counter(
            "order_pipeline_orders_processed_total",
            "Orders processed and stored.",
            telemetry["orders_processed"],
        ),
        counter(
            "order_pipeline_orders_retried_total",
            "OrderCreated events sent back to be handled again after a failure (one per retry).",
            telemetry["orders_retried"],
        ),
        counter(
            "order_pipeline_orders_dead_lettered_total",
            "OrderCreated events set aside as dead letters.",
            telemetry["orders_dead_lettered"],
        ),
        histogram,
    ]
    if telemetry["average_execution_price"] is not None:
        families.append(
            gauge(
                "order_pipeline_average_execution_price",
                "Average execution price of the orders processed (quantity x unit price).",
                float(telemetry["average_execution_price"]),
            )
        )
    return families


class Families:
    """What prometheus_client's encoders read: anything with collect()."""

    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


def exposition_response(answers: dict, media_type: str) -> Response:
    encode, content_type = ENCODERS[media_type]
    return Response(
        encode(Families(pipeline_families(answers))),
        status=200,
        headers={"Content-Type": content_type, "Vary": "Accept"},
    )

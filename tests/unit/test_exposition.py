"""The gateway's Prometheus /metrics without a server: which format the
Accept header chooses, and the metric families made of the sources' answers
(rendered, then parsed back with prometheus_client's own parsers).
tests/integration/test_gateway_http.py and test_metrics.py have them against
the real services, and test_prometheus.py a real Prometheus server."""

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from gateway.exposition import (
    JSON,
    OPENMETRICS,
    PROMETHEUS_TEXT,
    exposition_response,
    negotiate,
    pipeline_families,
)
from gateway.monitoring import instances_view
from gateway.settings import InstanceRules
from gateway.snapshot import DOWN, ERROR, UP, Answer
from order_contract import GATEWAY, GENERATOR, PROCESSOR
from processor_service.latency import BUCKET_BOUNDS_US

# What a Prometheus server (2.x) sends.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize(
    "accept, chosen",
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/json", JSON),
        (BROWSER_ACCEPT, JSON),
        ("image/png", JSON),  # nothing offered is acceptable: the JSON, as always
        ("garbage", JSON),
        ("text/plain;version=0.0.4", PROMETHEUS_TEXT),
        ("text/plain", PROMETHEUS_TEXT),
        ("text/*", PROMETHEUS_TEXT),
        ("application/openmetrics-text; version=1.0.0", OPENMETRICS),
        (PROMETHEUS_ACCEPT, OPENMETRICS),
        # The q-values decide, not the order.
        ("application/openmetrics-text;q=0.3,text/plain;version=0.0.4", PROMETHEUS_TEXT),
        ("text/plain;q=0.2, application/openmetrics-text;q=0.9", OPENMETRICS),
        ("application/json;q=0.5, text/plain", PROMETHEUS_TEXT),
        ("text/plain;version=0.0.4;q=0.5, application/json", JSON),
        # A specific entry outranks a wildcard whatever their qualities.
        ("*/*;q=1, text/plain;q=0.1", JSON),
        ("text/plain;q=0", JSON),
        ("text/plain;q=high", JSON),
        # On a tie OpenMetrics comes before the older text format.
        ("text/plain, application/openmetrics-text", OPENMETRICS),
    ],
)
def test_the_accept_header_chooses_the_format(accept, chosen):
    assert negotiate(accept) == chosen


# 7 orders: 5 at most 10 ms, all 7 at most 100 ms.
TELEMETRY = {
    "orders_processed": 7,
    "average_execution_price": "12.50",
    "orders_retried": 3,
    "orders_dead_lettered": 2,
    "latency": {
        "buckets": [
            [bound / 1_000_000, 0 if bound < 10_000 else 5 if bound < 100_000 else 7]
            for bound in BUCKET_BOUNDS_US
        ],
        "count": 7,
        "sum_seconds": 0.35,
    },
}


def instance(service, seconds_since_seen=1.0, **facts):
    return {
        "instance_id": "0123456789abcdef",
        "service": service,
        "seconds_since_seen": seconds_since_seen,
        "seconds_since_event": None,
        "events_waiting": None,
        "queue_ready": None,
        **facts,
    }


# Two processors live, one silent, one stalled; a generator; no gateway heard.
INSTANCES = instances_view(
    [
        instance(GENERATOR),
        *[instance(PROCESSOR, seconds_since_event=0.5, events_waiting=0, queue_ready=0)] * 2,
        instance(PROCESSOR, seconds_since_seen=60),
        instance(PROCESSOR, seconds_since_event=45, events_waiting=3, queue_ready=0),
    ],
    InstanceRules(silent_seconds=15, stall_seconds=30),
)
# 1200 orders in 10 minutes, 30 ms each in the handler, 450 ms from creation
# to stored on average (1000 of them known), 60 retries.
TIMING = {
    "window_seconds": 600,
    "services": {
        PROCESSOR: {
            "processed": 1200,
            "throughput_per_second": 2.0,
            "processing_time_ms": 30.0,
            "critical_time_ms": 450.0,
            "retries": 60,
            "retries_per_second": 0.1,
        }
    },
}


GROUPS = {
    "count": 2,
    "recent_seconds": 600,
    "groups": [
        {
            "group": "5d41402abc4b2a76",
            "error_type": "OrderNotFound",
            "cause": "order <n> does not exist",
            "frame": "processor_service/processing.py:process_order_batch",
            "count": 3,
            "recent_orders": 2,
        },
        {
            "group": "0123456789abcdef",
            "error_type": "DeliveryLimit",
            "cause": 'delivered "' + "x" * 200,
            "frame": None,
            "count": 1,
            "recent_orders": 0,
        },
    ],
}


def answers(**overrides):
    base = {
        "instances": Answer(UP, INSTANCES),
        "timing": Answer(UP, TIMING),
        "status": Answer(UP, {"running": True, "interval_seconds": 2.0, "orders_created": 10}),
        "backlog": Answer(UP, 1),
        "telemetry": Answer(UP, TELEMETRY),
        "dead_letters": Answer(UP, {"count": 2, "dead_letters": ["a"]}),
        "groups": Answer(UP, GROUPS),
        "queues": Answer(UP, {"queue_depth": 4, "consumers": 2}),
    }
    base.update(overrides)
    return base


def samples(families):
    """{(sample name, frozenset of labels): value} from parsed families."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
    }


def rendered(answers_, media_type):
    response = exposition_response(answers_, media_type)
    text = response.get_data(as_text=True)
    parse = parse_openmetrics if media_type == OPENMETRICS else parse_text
    return response, {family.name: family for family in parse(text)}


@pytest.mark.parametrize("media_type", [PROMETHEUS_TEXT, OPENMETRICS])
def test_every_figure_is_exposed_with_its_type_and_value(media_type):
    response, families = rendered(answers(), media_type)
    assert response.headers["Content-Type"].startswith(media_type + "; version=")
    assert response.headers["Vary"] == "Accept"
    types = {name: family.type for name, family in families.items()}
    # A counter family is named without _total, its sample with it.
    for name in ("orders_created", "orders_processed", "orders_retried", "orders_dead_lettered"):
        assert types.pop(f"order_pipeline_{name}") == "counter"
    assert types == {
        "order_pipeline_component_up": "gauge",
        "order_pipeline_generator_running": "gauge",
        "order_pipeline_generator_interval_seconds": "gauge",
        "order_pipeline_outbox_backlog": "gauge",
        "order_pipeline_event_queue_depth": "gauge",
        "order_pipeline_event_queue_consumers": "gauge",
        "order_pipeline_dead_letter_queue_depth": "gauge",
        "order_pipeline_dead_letter_groups": "gauge",
        "order_pipeline_dead_letter_group_letters": "gauge",
        "order_pipeline_dead_letter_group_recent_orders": "gauge",
        "order_pipeline_average_execution_price": "gauge",
        "order_pipeline_end_to_end_latency_seconds": "histogram",
        "order_pipeline_service_instances": "gauge",
        "order_pipeline_service_instances_silent": "gauge",
        "order_pipeline_service_instances_stalled": "gauge",
        "order_pipeline_throughput_per_second": "gauge",
        "order_pipeline_retries_per_second": "gauge",
        "order_pipeline_processing_time_seconds": "gauge",
        "order_pipeline_critical_time_seconds": "gauge",
    }
    values = samples(families.values())
    none = frozenset()
    assert values[("order_pipeline_orders_created_total", none)] == 10
    assert values[("order_pipeline_orders_processed_total", none)] == 7
    assert values[("order_pipeline_orders_retried_total", none)] == 3
    assert values[("order_pipeline_orders_dead_lettered_total", none)] == 2
    assert values[("order_pipeline_generator_running", none)] == 1
    assert values[("order_pipeline_generator_interval_seconds", none)] == 2.0
    assert values[("order_pipeline_outbox_backlog", none)] == 1
    assert values[("order_pipeline_event_queue_depth", none)] == 4
    assert values[("order_pipeline_event_queue_consumers", none)] == 2
    # The processor's count, not the broker's (which misses letters held by a listing).
    assert values[("order_pipeline_dead_letter_queue_depth", none)] == 2
    assert values[("order_pipeline_average_execution_price", none)] == 12.5
    for component in ("generator", "processor", "broker"):
        assert values[("order_pipeline_component_up", frozenset({("component", component)}))] == 1
    latency = "order_pipeline_end_to_end_latency_seconds"
    assert values[(latency + "_count", none)] == 7
    assert values[(latency + "_sum", none)] == 0.35
    buckets = {
        dict(labels)["le"]: value
        for (name, labels), value in values.items()
        if name == latency + "_bucket"
    }
    assert len(buckets) == len(BUCKET_BOUNDS_US) + 1
    assert (buckets["0.001"], buckets["0.01"], buckets["0.1"], buckets["60.0"]) == (0, 5, 7, 7)
    assert buckets["+Inf"] == 7
    # Instances per service (stalled ones beat, so they count), and the timing.
    for name, counts in (
        ("order_pipeline_service_instances", {GENERATOR: 1, PROCESSOR: 3, GATEWAY: 0}),
        ("order_pipeline_service_instances_silent", {GENERATOR: 0, PROCESSOR: 1, GATEWAY: 0}),
        ("order_pipeline_service_instances_stalled", {GENERATOR: 0, PROCESSOR: 1, GATEWAY: 0}),
    ):
        for service, count in counts.items():
            assert values[(name, frozenset({("service", service)}))] == count, (name, service)
    window = frozenset({("service", PROCESSOR), ("window", "10m")})
    assert values[("order_pipeline_throughput_per_second", window)] == 2.0
    assert values[("order_pipeline_retries_per_second", window)] == 0.1
    assert values[("order_pipeline_processing_time_seconds", window)] == 0.03
    assert values[("order_pipeline_critical_time_seconds", window)] == 0.45


def test_a_source_that_does_not_answer_is_down_and_its_figures_left_out():
    _, families = rendered(
        answers(
            telemetry=Answer(DOWN),
            dead_letters=Answer(DOWN),
            groups=Answer(DOWN),
            status=Answer(ERROR),
            backlog=Answer(DOWN),
            instances=Answer(DOWN),
            timing=Answer(ERROR),
        ),
        PROMETHEUS_TEXT,
    )
    values = samples(families.values())
    up = {
        dict(labels)["component"]: value
        for (name, labels), value in values.items()
        if name == "order_pipeline_component_up"
    }
    assert up == {"generator": 0, "processor": 0, "broker": 1}
    assert set(families) == {
        "order_pipeline_component_up",
        "order_pipeline_event_queue_depth",
        "order_pipeline_event_queue_consumers",
    }


def test_no_average_price_before_the_first_order():
    empty = {
        **TELEMETRY,
        "orders_processed": 0,
        "average_execution_price": None,
        "latency": {
            "buckets": [[b / 1e6, 0] for b in BUCKET_BOUNDS_US],
            "count": 0,
            "sum_seconds": 0,
        },
    }
    names = {family.name for family in pipeline_families(answers(telemetry=Answer(UP, empty)))}
    assert "order_pipeline_average_execution_price" not in names
    assert "order_pipeline_orders_processed" in names


@pytest.mark.parametrize("media_type", [PROMETHEUS_TEXT, OPENMETRICS])
def test_each_failure_group_is_a_series_labelled_with_its_cause(media_type):
    _, families = rendered(answers(), media_type)
    values = samples(families.values())
    assert values[("order_pipeline_dead_letter_groups", frozenset())] == 2
    first = frozenset(
        {
            ("group", "5d41402abc4b2a76"),
            ("error_type", "OrderNotFound"),
            ("frame", "processor_service/processing.py:process_order_batch"),
            ("cause", "order <n> does not exist"),
        }
    )
    assert values[("order_pipeline_dead_letter_group_letters", first)] == 3
    assert values[("order_pipeline_dead_letter_group_recent_orders", first)] == 2
    # No frame is "unknown"; a long cause is cut, quotes and all kept.
    (second,) = [
        labels
        for (name, labels), _ in values.items()
        if name == "order_pipeline_dead_letter_group_letters" and ("frame", "unknown") in labels
    ]
    assert dict(second)["cause"] == ('delivered "' + "x" * 200)[:120]
    assert values[("order_pipeline_dead_letter_group_letters", second)] == 1

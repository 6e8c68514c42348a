"""deploy/prometheus/ checked by promtool, and a real Prometheus server
(Debian's `prometheus` package) scraping a running gateway and a processor's
own endpoint: what Prometheus stores must equal what the tables say.

The gateway has a read token, as it should where others can reach it:
Prometheus scrapes it with that bearer token, read from a file.

The server gets a configuration and a data directory of its own in a
temporary directory, on a free port, and is stopped (and the directory
removed) however the test ends. Generation is stopped and every order
processed before anything is compared, and every comparison is polled with a
generous timeout, so the machine's speed does not matter.
"""

import os

import pytest
import requests

from harness.broker import publish_order_created
from harness.processes import free_port, wait_until
from harness.tables import order_count, parked_dead_letters, processed_count
from tests.support.prometheus import (
    DEPLOY,
    TEXT_ACCEPT,
    PrometheusServer,
    promtool,
    wait_for_value,
)
from tests.support.services import InProcessServices, wait_processed


@pytest.mark.parametrize(
    "command",
    [
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts_test.yml"),
    ],
    ids=" ".join,
)
def test_the_shipped_prometheus_files_pass_promtool(command):
    *verb, file_name = command
    checked = promtool(*verb, os.path.join(DEPLOY, file_name))
    assert checked.returncode == 0, (checked.stdout + checked.stderr).decode()
    assert b"SUCCESS" in checked.stdout + checked.stderr


ALERTS = {
    "OrderPipelineDeadLetters",
    "OrderPipelineEventBacklogGrowing",
    "OrderPipelineOutboxBacklogGrowing",
    "OrderPipelineNoProcessorConsuming",
    "OrderPipelineGeneratorStopped",
    "OrderPipelineLatencyHigh",
    "OrderPipelineComponentUnreachable",
    "OrderPipelineServiceWithoutInstances",
    "OrderPipelineProcessorStalled",
    "OrderPipelineScrapeFailing",
    "OrderPipelineGatewayTokensRefused",
    "OrderPipelineNewDeadLetterGroup",
    "OrderPipelineDeadLetterGroupGrowing",
}
MISSING = 10**9  # an order id no generated order reaches: its event is a dead letter


READ_TOKEN = "Pm7-ScRape_WithMe4kLq9Zx2Vb8Nc3Hd"


@pytest.fixture
def running(make_database, make_vhost):
    processor_port = free_port()
    with InProcessServices(
        make_database(),
        make_vhost(),
        PROCESSOR_METRICS_ADDRESS=f"127.0.0.1:{processor_port}",
        GATEWAY_READ_TOKEN=READ_TOKEN,
    ) as services:
        services.processor_metrics_port = processor_port
        yield services.start("generator", "processor", "gateway")


def test_a_real_prometheus_scrapes_the_gateway_and_agrees_with_the_tables(running, tmp_path):
    assert running.post("/start")[0].status_code == 200
    wait_until(lambda: order_count(running.db_uri) >= 3, 30, message="orders generated")
    assert running.post("/stop")[0].status_code == 200
    wait_processed(running, timeout=30)
    created, processed = order_count(running.db_uri), processed_count(running.db_uri)
    assert processed == created >= 3
    # Two events for orders that do not exist: one failure group of two.
    publish_order_created(running.amqp_uri, [{"order_id": MISSING}, {"order_id": MISSING + 1}])
    wait_until(lambda: parked_dead_letters(running.db_uri) == 2, 30, message="two dead letters")

    text = requests.get(
        running.base_url + "/metrics",
        headers={"Accept": TEXT_ACCEPT, "Authorization": "Bearer " + READ_TOKEN},
        timeout=10,
    ).content
    checked = promtool("check", "metrics", stdin=text)
    assert checked.returncode == 0, (checked.stdout + checked.stderr).decode()

    gateway = f"127.0.0.1:{running.port}"
    processor = f"127.0.0.1:{running.processor_metrics_port}"
    token_file = tmp_path / "gateway_read_token"
    token_file.write_text(READ_TOKEN + "\n")
    server = PrometheusServer(
        [
            {
                "job_name": "order-pipeline",
                "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                "static_configs": [{"targets": [gateway]}],
            },
            {"job_name": "without-the-token", "static_configs": [{"targets": [gateway]}]},
            {"job_name": "order-pipeline-processes", "static_configs": [{"targets": [processor]}]},
        ]
    )
    try:
        server.start()
        pipeline = '{job="order-pipeline"}'
        wait_for_value(server, f"order_pipeline_orders_processed_total{pipeline}", processed)
        wait_for_value(
            server, f"order_pipeline_end_to_end_latency_seconds_count{pipeline}", processed
        )
        wait_for_value(server, f"order_pipeline_orders_created_total{pipeline}", created)
        wait_for_value(server, f"order_pipeline_generator_running{pipeline}", 0)
        wait_for_value(server, f"order_pipeline_event_queue_consumers{pipeline}", 1)
        for service in ("order_generator", "order_processor", "gateway"):
            instances = (
                f'order_pipeline_service_instances{{job="order-pipeline",service="{service}"}}'
            )
            wait_for_value(server, instances, 1)
        # Orders per second over 10 minutes, back to orders (all were in them).
        throughput = (
            'order_pipeline_throughput_per_second{job="order-pipeline",service="order_processor"}'
        )
        wait_for_value(server, f"round({throughput} * 600)", processed)
        # The gateway answered in OpenMetrics, which Prometheus asks for first.
        (target,) = [t for t in server.targets() if t["labels"]["job"] == "order-pipeline"]
        assert (target["health"], target["lastError"]) == ("up", "")
        # Without the token the gateway refuses the scrape.
        wait_for_value(server, 'up{job="without-the-token"}', 0)
        (refused,) = [t for t in server.targets() if t["labels"]["job"] == "without-the-token"]
        assert "401" in refused["lastError"], refused
        # The processor's own endpoint: its event handler's workers.
        wait_for_value(server, 'up{job="order-pipeline-processes"}', 1)
        handled = (
            'sum(order_pipeline_worker_duration_seconds_count{job="order-pipeline-processes",'
            'entrypoint="handle_order_created"}) > 0'
        )
        wait_until(lambda: server.value(handled), 60, interval=0.5, message=handled)
        # The dead letters' failure group, one series labelled with its cause.
        group = (
            'order_pipeline_dead_letter_group_letters{job="order-pipeline",'
            'error_type="OrderNotFound",cause="order <n> does not exist",'
            'frame="processor_service/processing.py:process_order_batch"}'
        )
        wait_for_value(server, group, 2)
        wait_for_value(server, f"order_pipeline_dead_letter_groups{pipeline}", 1)
        # The shipped alert rules load in a real server; the one that fires
        # is the new failure group's (which fires at once: a Prometheus with
        # no history has seen no group before). OrderPipelineDeadLetters
        # and OrderPipelineGeneratorStopped may be pending.
        rules = requests.get(server.url + "/api/v1/rules", timeout=10).json()["data"]["groups"]
        loaded = {
            rule["name"] for group in rules for rule in group["rules"] if rule["type"] == "alerting"
        }
        assert loaded == ALERTS
        firing = 'ALERTS{alertstate="firing"}'
        wait_until(lambda: server.query(firing), 60, interval=0.5, message="an alert firing")
        (alert,) = server.query(firing)
        assert alert["metric"]["alertname"] == "OrderPipelineNewDeadLetterGroup"
        assert alert["metric"]["error_type"] == "OrderNotFound"
    finally:
        server.stop()

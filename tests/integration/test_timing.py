"""The OrderCreated handler's timing with the real services in process: what
GET /timing, the console's snapshot and /metrics say equals what SQL says
(handling_seconds, and order_process and events_set_aside behind it), and a
restarted gateway says the same, having kept nothing of its own."""

import json

import pytest
import requests

from gateway.openapi import openapi_document
from harness.processes import wait_until
from harness.tables import scalar, sql
from order_contract import PROCESSOR, TIMING_WINDOW_SECONDS
from tests.support.openapi import response_schema, schema_violations
from tests.support.prometheus import TEXT_ACCEPT, exposition_samples
from tests.support.services import InProcessServices, wait_processed

TIMEOUT = 60


@pytest.fixture
def services(make_database, make_vhost):
    running = InProcessServices(make_database(), make_vhost())
    yield running
    running.stop_all()


def retried(db_uri):
    return scalar(
        db_uri, "SELECT COALESCE(SUM(events), 0) FROM events_set_aside WHERE outcome = 'retried'"
    )


def sums_in_sql(db_uri):
    """handling_seconds summed over the window, by the database's clock:
    (processed, processing us, critical orders, critical us, retries)."""
    (row,) = sql(
        db_uri,
        "SELECT COALESCE(SUM(processed), 0), COALESCE(SUM(processing_us_sum), 0), "
        "COALESCE(SUM(critical_orders), 0), COALESCE(SUM(critical_us_sum), 0), "
        "COALESCE(SUM(retries), 0) FROM handling_seconds "
        "WHERE second > TIMESTAMPDIFF(SECOND, '1970-01-01', UTC_TIMESTAMP()) - :window",
        window=TIMING_WINDOW_SECONDS,
    )
    return tuple(int(value) for value in row)


def figures(processed, processing_us, critical_orders, critical_us, retries):
    """What the timing must say of these sums."""
    return {
        "processed": processed,
        "throughput_per_second": processed / TIMING_WINDOW_SECONDS,
        "processing_time_ms": processing_us / processed / 1000,
        "critical_time_ms": critical_us / critical_orders / 1000,
        "retries": retries,
        "retries_per_second": retries / TIMING_WINDOW_SECONDS,
    }


def timing(services):
    response, body = services.get("/timing")
    assert response.status_code == 200, body
    document = openapi_document()
    schema = response_schema(document, "/timing", "GET", 200)
    assert schema_violations(document, schema, body) == []
    return body


def snapshot_timing(services):
    """The `timing` of the first snapshot the console gets."""
    with requests.get(services.base_url + "/events", stream=True, timeout=30) as stream:
        for line in stream.iter_lines(decode_unicode=True):
            if line.startswith("data: "):
                return json.loads(line[len("data: ") :])["timing"]


def test_the_timing_everywhere_equals_what_sql_says_and_outlives_the_gateway(services):
    services.start("generator", "processor", "gateway")
    # Orders whose events wait for a processor (its queue declared, the
    # processor gone), which then meets a generator that does not answer: it
    # retries them, then stores them once the generator answers again.
    services.stop("processor")
    for quantity in range(1, 9):
        assert services.post("/orders", json={"quantity": quantity})[0].status_code == 201
    services.stop("generator")
    services.start("processor")
    wait_until(lambda: retried(services.db_uri) > 0, TIMEOUT, message="events retried")
    services.start("generator")
    wait_processed(services, timeout=TIMEOUT)

    # The retries are counted (by the second) as the broker takes each copy:
    # wait for the last count to be written.
    def settled():
        sums = sums_in_sql(services.db_uri)
        return sums if sums[4] == retried(services.db_uri) else None

    (processed, processing_us, critical_orders, critical_us, retries) = wait_until(
        settled, TIMEOUT, message="every retry counted"
    )
    # handling_seconds agrees with the tables it summarises.
    assert processed == scalar(services.db_uri, "SELECT COUNT(*) FROM order_process") == 8
    assert critical_orders == processed
    assert critical_us == scalar(
        services.db_uri,
        "SELECT SUM(GREATEST(TIMESTAMPDIFF(MICROSECOND, order_created_at, processed_at), 0)) "
        "FROM order_process",
    )
    assert retries > 0 and processing_us > 0
    expected = figures(processed, processing_us, critical_orders, critical_us, retries)

    body = timing(services)
    assert body["window_seconds"] == TIMING_WINDOW_SECONDS
    assert body["services"] == {PROCESSOR: expected}
    assert snapshot_timing(services) == {"state": "up", **body}

    response = requests.get(
        services.base_url + "/metrics", headers={"Accept": TEXT_ACCEPT}, timeout=10
    )
    samples = exposition_samples(response)
    labels = f'{{service="{PROCESSOR}",window="10m"}}'
    assert (
        samples["order_pipeline_throughput_per_second" + labels]
        == expected["throughput_per_second"]
    )
    assert samples["order_pipeline_retries_per_second" + labels] == expected["retries_per_second"]
    assert samples["order_pipeline_processing_time_seconds" + labels] == (
        expected["processing_time_ms"] / 1000
    )
    assert samples["order_pipeline_critical_time_seconds" + labels] == (
        expected["critical_time_ms"] / 1000
    )

    # A new gateway knows nothing the old one saw: the same answer.
    services.stop("gateway")
    services.start("gateway")
    assert timing(services) == body

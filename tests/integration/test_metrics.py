"""The gateway's pipeline-wide Prometheus figures with the real services on
the real broker and database: counts that hold however many processors run
and survive a restart.

Every figure is compared with what the tables or the broker say, or with a
count the test made happen; nothing waits a fixed time (each condition is
polled with a generous timeout).
"""

import pytest
import requests
from prometheus_client.utils import floatToGoString
from sqlalchemy import text

from harness.broker import publish_order_created
from harness.processes import wait_until
from harness.tables import (
    connected,
    latency_histogram,
    parked_dead_letters,
    processed_count,
    sql,
)
from processor_service.latency import BUCKET_BOUNDS_US
from tests.support.prometheus import TEXT_ACCEPT, exposition_samples
from tests.support.services import wait_processed


def prometheus_figures(services):
    response = requests.get(
        services.base_url + "/metrics", headers={"Accept": TEXT_ACCEPT}, timeout=10
    )
    assert response.status_code == 200
    return exposition_samples(response)


def wait_for_figures(services, wanted: dict, timeout=30):
    """Poll the gateway until every figure in `wanted` has its value."""
    last = {}

    def reached():
        last.update(prometheus_figures(services))
        return all(last.get(name) == value for name, value in wanted.items())

    try:
        wait_until(reached, timeout, interval=0.2, message=f"figures {wanted}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; got { ({n: last.get(n) for n in wanted}) }") from None
    return last


def add_orders(db_uri, count):
    """`count` orders the generator will confirm, committed directly; their ids."""
    first = sql(db_uri, "SELECT COALESCE(MAX(id), 0) + 1 FROM orders")[0][0]
    ids = list(range(first, first + count))
    with connected(db_uri) as connection:
        connection.execute(
            text("INSERT INTO orders (id, quantity, created_at) VALUES (:id, 3, UTC_TIMESTAMP(6))"),
            [{"id": order_id} for order_id in ids],
        )
    return ids


def test_retries_and_dead_letters_are_counted_once_each_and_survive_a_restart(services):
    # No generator: every order confirmation fails, is retried once, and is
    # parked on its second attempt; a body that is not JSON is parked at once.
    services.config.update(
        {
            "RETRY_FIRST_DELAY_SECONDS": 0.05,
            "RETRY_MAX_DELAY_SECONDS": 0.1,
            "RETRY_MAX_ATTEMPTS": 2,
        }
    )
    services.start("processor", "gateway")
    publish_order_created(services.amqp_uri, [{"order_id": i} for i in (1, 2, 3)])
    publish_order_created(services.amqp_uri, ["not json"], content_type="text/plain")
    wait_until(lambda: parked_dead_letters(services.db_uri) == 4, 30, message="4 dead letters")
    wanted = {
        "order_pipeline_orders_retried_total": 3,
        "order_pipeline_orders_dead_lettered_total": 4,
        "order_pipeline_dead_letter_queue_depth": 4,
        'order_pipeline_component_up{component="generator"}': 0,
        'order_pipeline_component_up{component="processor"}': 1,
        "order_pipeline_orders_processed_total": 0,
    }
    figures = wait_for_figures(services, wanted)
    assert "order_pipeline_orders_created_total" not in figures  # not a guess
    # Kept in the processor's table, not in its memory.
    services.stop("processor")
    services.start("processor")
    assert wait_for_figures(services, wanted)["order_pipeline_event_queue_consumers"] == 1
    assert dict(sql(services.db_uri, "SELECT outcome, events FROM events_set_aside")) == {
        "retried": 3,
        "dead_lettered": 4,
    }


def test_two_processors_make_one_set_of_figures_equal_to_the_tables(services):
    services.start("generator", "processor", "gateway")
    services.start_as("processor-2", "processor")
    order_ids = add_orders(services.db_uri, 400)
    publish_order_created(services.amqp_uri, [{"order_id": i} for i in order_ids], confirm=False)
    wait_processed(services, timeout=60)
    processed = processed_count(services.db_uri)
    assert processed == 400
    cumulative, count, sum_us = latency_histogram(services.db_uri, BUCKET_BOUNDS_US)
    figures = wait_for_figures(
        services,
        {
            "order_pipeline_orders_processed_total": processed,
            "order_pipeline_end_to_end_latency_seconds_count": count,
            "order_pipeline_event_queue_consumers": 2,
        },
    )
    assert count == processed
    buckets = [
        figures[
            f'order_pipeline_end_to_end_latency_seconds_bucket{{le="{floatToGoString(bound / 1e6)}"}}'
        ]
        for bound in BUCKET_BOUNDS_US
    ]
    assert buckets == cumulative
    assert figures["order_pipeline_end_to_end_latency_seconds_sum"] == pytest.approx(sum_us / 1e6)

"""The whole system as a user runs it: three `nameko run` processes on the
real broker and database, driven over HTTP and RPC."""
import time

import pytest

from tests.support.checks import (
    order_count, processed_count, sql_metrics, unprocessed_order_ids, wrong_prices)
from tests.support.processes import wait_until

pytestmark = pytest.mark.e2e

INTERVAL = 0.2


def wait_all_processed(db_uri, timeout=20):
    wait_until(lambda: order_count(db_uri) and not unprocessed_order_ids(db_uri),
               timeout, message="every order processed")


def test_orders_flow_and_are_each_processed_once_at_the_right_price(pipeline, db_uri):
    system = pipeline(ORDER_INTERVAL_SECONDS=INTERVAL).start()
    time.sleep(3)
    system.post("/stop").raise_for_status()
    wait_all_processed(db_uri)

    created = order_count(db_uri)
    # ~3 s at 0.2 s per order (plus start-up), one order per tick.
    assert 8 <= created <= 20
    assert processed_count(db_uri) == created
    assert wrong_prices(db_uri) == []
    assert system.get("/metrics").json() == sql_metrics(db_uri)
    printed = system.processor.output()
    for order_id in range(1, created + 1):
        assert "Order {} OrderExecutionPrice ".format(order_id) in printed

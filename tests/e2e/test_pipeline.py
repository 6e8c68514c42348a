"""The whole system as a user runs it: three `nameko run` processes on the
real broker and database, driven over HTTP and RPC."""

import time

import pytest

from harness.processes import wait_until
from harness.tables import (
    order_count,
    processed_count,
    sql_metrics,
    unprocessed_order_ids,
    wrong_prices,
)

INTERVAL = 0.2


def wait_all_processed(db_uri, timeout=20):
    wait_until(
        lambda: order_count(db_uri) and not unprocessed_order_ids(db_uri),
        timeout,
        message="every order processed",
    )


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
        assert f"Order {order_id} OrderExecutionPrice " in printed


def test_generation_stops_and_starts_again_over_http(pipeline, db_uri):
    system = pipeline(ORDER_INTERVAL_SECONDS=INTERVAL).start()
    wait_until(lambda: order_count(db_uri) >= 3, 10, message="first orders")

    stopped = system.post("/stop")
    assert stopped.status_code == 200
    assert stopped.json()["running"] is False
    time.sleep(INTERVAL * 2)  # a tick already in flight may still land
    after_stop = order_count(db_uri)
    time.sleep(INTERVAL * 8)
    assert order_count(db_uri) == after_stop
    assert system.get("/status").json() == {
        "running": False,
        "interval_seconds": INTERVAL,
        "orders_created": after_stop,
    }

    started = system.post("/start")
    assert started.json()["running"] is True
    wait_until(lambda: order_count(db_uri) >= after_stop + 3, 10, message="orders resume")
    system.post("/stop")
    wait_all_processed(db_uri)
    assert system.get("/metrics").json() == sql_metrics(db_uri)


def test_the_on_off_state_survives_a_generator_restart(pipeline, db_uri):
    system = pipeline(ORDER_INTERVAL_SECONDS=INTERVAL).start()
    system.post("/stop").raise_for_status()
    system.generator.stop()
    count = order_count(db_uri)
    system.generator = system.start_service("generator_service")
    system.wait_healthy()
    time.sleep(INTERVAL * 8)
    assert order_count(db_uri) == count
    assert system.get("/status").json()["running"] is False


def test_a_second_generator_instance_does_not_double_the_rate(pipeline, db_uri):
    system = pipeline(ORDER_INTERVAL_SECONDS=INTERVAL, GENERATE_ON_FIRST_START="false").start()
    system.start_service("generator_service")
    system.wait_healthy()
    time.sleep(2)  # both instances are up and ticking

    start_count = order_count(db_uri)
    system.post("/start").raise_for_status()
    time.sleep(4)
    system.post("/stop").raise_for_status()
    created = order_count(db_uri) - start_count
    # 4 s at one order per 0.2 s is 20; two unsynchronised instances would give ~40.
    assert 14 <= created <= 24, created
    wait_all_processed(db_uri)
    assert processed_count(db_uri) == order_count(db_uri)


def test_rpc_calls_as_from_nameko_shell(pipeline, db_uri, amqp_uri):
    from nameko.standalone.rpc import ClusterRpcProxy

    from order_contract import InvalidQuantity

    system = pipeline(ORDER_INTERVAL_SECONDS=INTERVAL, GENERATE_ON_FIRST_START="false").start()
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=10) as rpc:
        assert rpc.order_generator.get_order(1) is None
        order = rpc.order_generator.create_order(7)  # works while generation is off
        assert order["quantity"] == 7
        assert rpc.order_generator.get_order(order["id"]) == order
        with pytest.raises(InvalidQuantity):
            rpc.order_generator.create_order(0)
        result = wait_until(
            lambda: rpc.order_processor.get_result(order["id"]), 10, message="processing result"
        )
        assert result["order_id"] == order["id"]
        assert rpc.order_processor.metrics() == sql_metrics(db_uri)
        assert rpc.order_generator.status()["orders_created"] == 1
    assert order_count(db_uri) == 1
    body = system.get("/orders/{}".format(order["id"])).json()
    assert body["quantity"] == 7 and body["processing"] == result

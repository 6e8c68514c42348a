"""The whole system as a user runs it: three `nameko run` processes on the
real broker and database, driven over HTTP and RPC."""

import time

import pytest

from generator_service.store import TICK_SLACK
from harness.processes import free_port, wait_until
from harness.tables import (
    order_count,
    processed_count,
    sql,
    sql_metrics,
    unprocessed_order_ids,
    wrong_prices,
)
from tests.support.prometheus import wait_for_workers
from tests.support.services import TICKS_THAT_WOULD_CREATE

INTERVAL = 0.2


def most_orders(seconds):
    """The most orders ticks can create in `seconds`, however many
    generators: by the database's clock a tick counts only TICK_SLACK
    intervals after the last."""
    return seconds / (INTERVAL * TICK_SLACK) + 1


def wait_all_processed(db_uri, timeout=60):
    wait_until(
        lambda: order_count(db_uri) and not unprocessed_order_ids(db_uri),
        timeout,
        message="every order processed",
    )


def generator_metrics():
    """Settings for a generator that serves its runtime metrics (and so a
    count of its timer's ticks) on a port of its own: (settings, port)."""
    port = free_port()
    return {"GENERATOR_METRICS_ADDRESS": f"127.0.0.1:{port}"}, port


def wait_for_ticks(metrics_port):
    """Wait until the generator has finished enough timer ticks, from now,
    that one of them would have created an order were generation on."""
    wait_for_workers(metrics_port, "generate_order", TICKS_THAT_WOULD_CREATE)


def test_orders_flow_and_are_each_processed_once_at_the_right_price(pipeline, db_uri):
    started = time.monotonic()
    system = pipeline(ORDER_INTERVAL_SECONDS=INTERVAL).start()
    wait_until(lambda: order_count(db_uri) >= 8, 60, message="orders created")
    system.post("/stop").raise_for_status()
    generating = time.monotonic() - started
    wait_all_processed(db_uri)

    created = order_count(db_uri)
    assert created <= most_orders(generating), (created, generating)
    assert processed_count(db_uri) == created
    assert wrong_prices(db_uri) == []
    assert system.get("/metrics").json() == sql_metrics(db_uri)
    printed = system.processor.output()
    # Every order, by the ids the table holds: ids are not contiguous (a
    # rolled-back attempt uses one up; Galera steps them by the cluster size).
    for (order_id,) in sql(db_uri, "SELECT id FROM orders"):
        assert f"Order {order_id} OrderExecutionPrice " in printed


def test_generation_stops_and_starts_again_over_http(pipeline, db_uri):
    metrics, metrics_port = generator_metrics()
    system = pipeline(ORDER_INTERVAL_SECONDS=INTERVAL, **metrics).start()
    wait_until(lambda: order_count(db_uri) >= 3, 10, message="first orders")

    stopped = system.post("/stop")
    assert stopped.status_code == 200
    assert stopped.json()["running"] is False
    # A tick that claimed its turn holds the state row until its order is
    # committed, and /stop waits for that row: once /stop has answered, no
    # order comes, however many ticks run.
    after_stop = order_count(db_uri)
    wait_for_ticks(metrics_port)
    assert order_count(db_uri) == after_stop
    assert system.get("/status").json() == {
        "running": False,
        "interval_seconds": INTERVAL,
        "orders_created": after_stop,
    }

    started = system.post("/start")
    assert started.json()["running"] is True
    wait_until(lambda: order_count(db_uri) >= after_stop + 3, 30, message="orders resume")
    system.post("/stop")
    wait_all_processed(db_uri)
    assert system.get("/metrics").json() == sql_metrics(db_uri)


def test_the_on_off_state_survives_a_generator_restart(pipeline, db_uri):
    metrics, metrics_port = generator_metrics()
    system = pipeline(ORDER_INTERVAL_SECONDS=INTERVAL, **metrics).start()
    system.post("/stop").raise_for_status()
    system.generator.stop()
    count = order_count(db_uri)
    system.generator = system.start_service("generator_service")
    system.wait_healthy()
    system.generator.wait_for_output("order generation is off")
    wait_for_ticks(metrics_port)  # the restarted generator's
    assert order_count(db_uri) == count
    assert system.get("/status").json()["running"] is False


def test_a_second_generator_instance_does_not_double_the_rate(pipeline, db_uri):
    system = pipeline(ORDER_INTERVAL_SECONDS=INTERVAL, GENERATE_ON_FIRST_START="false").start()
    second = system.start_service("generator_service")
    second.wait_for_output("Connected to amqp", timeout=60)  # both are up and ticking

    started = time.monotonic()
    system.post("/start").raise_for_status()
    wait_until(lambda: order_count(db_uri) >= 15, 60, message="orders created")
    system.post("/stop").raise_for_status()
    generating = time.monotonic() - started
    created = order_count(db_uri)
    # Two unsynchronised instances would make about twice as many.
    assert created <= most_orders(generating), (created, generating)
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
            lambda: rpc.order_processor.get_result(order["id"]), 30, message="processing result"
        )
        assert result["order_id"] == order["id"]
        assert rpc.order_processor.metrics() == sql_metrics(db_uri)
        assert rpc.order_generator.status()["orders_created"] == 1
    assert order_count(db_uri) == 1
    body = system.get("/orders/{}".format(order["id"])).json()
    assert body["quantity"] == 7 and body["processing"] == result


def test_orders_posted_over_http_and_created_in_bulk_are_each_processed(pipeline, db_uri, amqp_uri):
    from nameko.standalone.rpc import ClusterRpcProxy

    system = pipeline(ORDER_INTERVAL_SECONDS=INTERVAL, GENERATE_ON_FIRST_START="false").start()
    posted = system.post("/orders", json={"quantity": 3}, headers={"Idempotency-Key": "e2e-1"})
    assert posted.status_code == 201
    retried = system.post("/orders", json={"quantity": 3}, headers={"Idempotency-Key": "e2e-1"})
    assert (retried.status_code, retried.json()) == (200, posted.json())
    unkeyed = system.post("/orders", json={"quantity": 8})  # through a shared create_orders call
    assert unkeyed.status_code == 201 and unkeyed.json()["quantity"] == 8
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=10) as rpc:
        bulk = rpc.order_generator.create_orders([1, 2, 3, 4, 5])
        assert rpc.order_generator.status()["orders_created"] == 7
    assert order_count(db_uri) == 7
    wait_all_processed(db_uri)
    assert processed_count(db_uri) == 7 and wrong_prices(db_uri) == []
    for response in (posted, unkeyed):
        body = system.get(response.headers["Location"]).json()
        assert body["quantity"] == response.json()["quantity"]
        assert body["processing"]["order_id"] == response.json()["id"]
    assert [order["quantity"] for order in bulk] == [1, 2, 3, 4, 5]

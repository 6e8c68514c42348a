"""LOG_FORMAT=json on real `nameko run` processes."""

import json

from harness.processes import wait_until
from harness.tables import order_count, unprocessed_order_ids


def json_lines(process):
    return [json.loads(line) for line in process.output().splitlines() if line.strip()]


def test_json_logs_are_one_object_a_line_and_name_each_order(pipeline, db_uri):
    system = pipeline(LOG_FORMAT="json").start()
    wait_until(lambda: order_count(db_uri) >= 2, 30, message="orders created")
    system.post("/stop").raise_for_status()
    wait_until(lambda: not unprocessed_order_ids(db_uri), 30, message="orders processed")
    system.get("/status").raise_for_status()

    processed = [
        line for line in json_lines(system.processor) if "OrderExecutionPrice" in line["message"]
    ]
    assert processed, system.processor.output()
    for line in processed:
        assert line["message"].startswith(f"Order {line['order_id']} OrderExecutionPrice ")
        assert line["service"] == "order_processor"
        assert line["logger"] == "orders"
        assert line["level"] == "INFO"
        assert line["time"].endswith("Z")
    created = [line for line in json_lines(system.generator) if line.get("order_id")]
    assert created and all(line["service"] == "order_generator" for line in created)

    def access_lines():
        return [line for line in json_lines(system.gateway) if "GET /status" in line["message"]]

    # eventlet writes the access line once the response has gone out.
    wait_until(access_lines, 10, message="the access-log line of GET /status")
    (access,) = access_lines()
    assert access["logger"] == "nameko.web.server"
    assert "[" not in access["message"], access  # no second date


def test_log_created_orders_false_drops_the_created_line_not_the_price_line(pipeline, db_uri):
    system = pipeline(LOG_CREATED_ORDERS="false").start()
    wait_until(lambda: order_count(db_uri) >= 2, 30, message="orders created")
    system.post("/stop").raise_for_status()
    wait_until(lambda: not unprocessed_order_ids(db_uri), 30, message="orders processed")
    wait_until(
        lambda: "OrderExecutionPrice" in system.processor.output(), 10, message="a price line"
    )
    assert "Order created" not in system.generator.output()

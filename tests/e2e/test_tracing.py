"""OTEL_TRACES_EXPORTER=console on real `nameko run` processes: each order's
spans, written by the generator and the processor, share one trace id, and
its log lines name it."""

import json

from harness.processes import wait_until
from harness.tables import order_count, unprocessed_order_ids


def spans(process):
    """The span lines a process wrote (one JSON object each)."""
    found = []
    for line in process.output().splitlines():
        if line.startswith("{") and '"trace_id"' in line and '"span_id"' in line:
            found.append(json.loads(line))
    return found


def test_an_orders_spans_from_both_services_share_a_trace(pipeline, db_uri):
    system = pipeline(OTEL_TRACES_EXPORTER="console", LOG_FORMAT="json").start()
    wait_until(lambda: order_count(db_uri) >= 2, 30, message="orders created")
    system.post("/stop").raise_for_status()
    wait_until(lambda: not unprocessed_order_ids(db_uri), 30, message="orders processed")
    # The batch span processor exports on its schedule, and at exit.
    system.stop()

    generated = {
        span["context"]["trace_id"]
        for span in spans(system.generator)
        if span["name"] == "order_generator.generate_order"
    }
    handled = {
        span["context"]["trace_id"]: span
        for span in spans(system.processor)
        if span["name"] == "order_processor.handle_order_created"
    }
    assert handled, system.processor.output()[-2000:]
    assert set(handled) <= generated
    for span in handled.values():
        assert span["resource"]["attributes"]["service.name"] == "order_processor"
    # Each processed line in the log names its order's trace.
    logged = [
        line
        for line in map(json.loads, system.processor.output().splitlines())
        if line.get("logger") == "orders"
    ]
    assert logged
    assert {f"0x{line['trace_id']}" for line in logged} <= generated

"""The broker goes away, or has nowhere to route events yet."""

import time

import eventlet

from harness.processes import wait_until
from tests.faults.ledger import audit
from tests.faults.services import metrics, processor_outputs
from tests.faults.traffic import set_generation

INTERVAL = 0.05


def test_broker_restart_mid_stream_loses_and_doubles_nothing(
    private_rabbit, make_database, make_pipeline, make_ledger
):
    db_uri, amqp_uri = make_database(), private_rabbit.amqp_uri
    system = make_pipeline(db_uri, amqp_uri, ORDER_INTERVAL_SECONDS=INTERVAL).start()
    ledger = make_ledger(db_uri)
    wait_until(lambda: ledger.processed() >= 10, 30, message="processing under way")

    outage_start, last_before_outage = time.monotonic(), ledger.last_order_id()
    private_rabbit.stop()
    eventlet.sleep(2)
    assert ledger.outbox_size() > 0
    private_rabbit.start()
    fault_end = ledger.fault_ended()
    # The generator kept committing an order per tick while the broker was
    # away (their events waited in the outbox), not one per failed publish.
    ticks = (fault_end.at - outage_start) / INTERVAL
    assert fault_end.last_order_id - last_before_outage >= ticks / 4

    # Nobody restarts the services: they reconnect by themselves.
    recovery = ledger.wait_recovered(fault_end, timeout=60)
    system.wait_healthy()
    set_generation(amqp_uri, False)
    ledger.wait_drained(amqp_uri)
    audit(
        "RabbitMQ restarted mid-stream",
        ledger,
        metrics(system),
        processor_outputs(system),
        recovery,
    )


def test_orders_created_before_any_processor_ran_are_processed_when_one_starts(
    make_pipeline, db_uri, amqp_uri, make_ledger
):
    # A fresh vhost: no processor has ever bound its queue, so the broker
    # has nowhere to route OrderCreated and returns every event.
    system = make_pipeline(db_uri, amqp_uri, ORDER_INTERVAL_SECONDS=INTERVAL * 2)
    system.generator = system.start_service("generator_service")
    system.gateway = system.start_service("gateway")
    ledger = make_ledger(db_uri)
    wait_until(lambda: ledger.committed() >= 15, 30, message="orders created")
    eventlet.sleep(2.5)  # long enough for the outbox relay to have tried
    unannounced = ledger.scalar(
        "SELECT (SELECT COUNT(*) FROM order_outbox) = (SELECT COUNT(*) FROM orders)"
    )
    assert unannounced, "an order's outbox row was cleared with no queue to route it"

    system.processor = system.start_service("processor_service")
    fault_end = ledger.fault_ended()
    recovery = ledger.wait_recovered(fault_end)
    system.wait_healthy()
    set_generation(amqp_uri, False)
    ledger.wait_drained(amqp_uri)
    audit(
        "orders before any processor ran",
        ledger,
        metrics(system),
        processor_outputs(system),
        recovery,
    )

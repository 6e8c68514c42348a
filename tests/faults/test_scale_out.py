"""Several instances of each service at once: the database decides whose
tick creates the order, and the broker shares the events out."""

import time

from generator_service.store import TICK_SLACK
from harness.processes import wait_until
from tests.faults.ledger import audit
from tests.faults.services import metrics, outputs, processor_outputs
from tests.faults.traffic import set_generation

INTERVAL = 0.2
ORDERS = 15


def test_two_generators_and_three_processors_keep_one_order_per_tick(
    make_pipeline, db_uri, amqp_uri, make_ledger
):
    system = make_pipeline(
        db_uri, amqp_uri, ORDER_INTERVAL_SECONDS=INTERVAL, GENERATE_ON_FIRST_START="false"
    )
    modules = ["generator_service"] * 2 + ["processor_service"] * 3 + ["gateway"]
    services = [system.start_service(module) for module in modules]
    for service in services:
        service.wait_for_output("Connected to amqp", timeout=60)
    system.wait_healthy()
    ledger = make_ledger(db_uri)

    started = time.monotonic()
    set_generation(amqp_uri, True)
    wait_until(lambda: ledger.committed() >= ORDERS, 60, message="orders generated")
    set_generation(amqp_uri, False)
    generating = time.monotonic() - started
    fault_end = ledger.fault_ended()

    # One order per tick between them, not one per instance per tick: by the
    # database's clock a tick counts only TICK_SLACK intervals after the
    # last, so however long the run took, it holds at most this many.
    created = ledger.committed()
    assert created <= generating / (INTERVAL * TICK_SLACK) + 1, (created, generating)

    recovery = ledger.wait_recovered(fault_end)
    ledger.wait_drained(amqp_uri)
    audit(
        "2 generators + 3 processors", ledger, metrics(system), processor_outputs(system), recovery
    )
    print(
        "orders created per generator:",
        [output.count("Order created: id=") for output in outputs(system, "generator_service")],
    )
    print(
        "orders executed per processor:",
        [output.count(" OrderExecutionPrice ") for output in processor_outputs(system)],
    )

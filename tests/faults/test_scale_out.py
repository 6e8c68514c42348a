"""Several instances of each service at once: the database decides whose
tick creates the order, and the broker shares the events out."""

import time

from tests.faults.ledger import audit
from tests.faults.services import metrics, outputs, processor_outputs
from tests.faults.traffic import set_generation

INTERVAL = 0.2
GENERATING_SECONDS = 3
# generator_service.store.TICK_SLACK: a tick counts if the last one was at
# least this share of the interval ago.
TICK_SLACK = 0.9


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

    set_generation(amqp_uri, True)
    started = time.monotonic()
    time.sleep(GENERATING_SECONDS)
    set_generation(amqp_uri, False)
    generating = time.monotonic() - started
    fault_end = ledger.fault_ended()

    # One order per tick between them, not one per instance per tick.
    created = ledger.committed()
    assert created <= generating / (INTERVAL * TICK_SLACK) + 2, created
    assert created >= generating / INTERVAL / 2, created

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

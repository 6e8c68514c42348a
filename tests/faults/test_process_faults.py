"""Services killed or stopped in the middle of a stream of orders."""

import signal

import eventlet

from harness.processes import free_port, wait_until
from tests.faults.ledger import audit
from tests.faults.services import metrics, processor_outputs, wait_exited
from tests.faults.traffic import create_orders, create_orders_in_bulk, set_generation
from tests.support.prometheus import workers_active

INTERVAL = 0.05
BURST = 80
BULK_CALLS = 20
BULK_SIZE = 50


def test_processor_killed_mid_stream_loses_and_doubles_nothing(
    make_pipeline, db_uri, amqp_uri, make_ledger
):
    metrics_port = free_port()
    system = make_pipeline(
        db_uri,
        amqp_uri,
        ORDER_INTERVAL_SECONDS=INTERVAL,
        PROCESSOR_METRICS_ADDRESS=f"127.0.0.1:{metrics_port}",
    ).start()
    ledger = make_ledger(db_uri)
    # The timer's stream plus a burst over RPC. The processor is paused
    # while a backlog builds up, so that when it resumes it holds a batch
    # of it (and is working on it, by its own metrics) when SIGKILL arrives.
    burst = eventlet.spawn(create_orders, amqp_uri, BURST)
    wait_until(lambda: ledger.processed() >= 10, 30, message="processing under way")
    system.processor.signal(signal.SIGSTOP)
    wait_until(lambda: ledger.unprocessed() >= BURST // 2, 30, message="a backlog")
    system.processor.signal(signal.SIGCONT)
    wait_until(
        lambda: workers_active(metrics_port, "order_processor") > 0,
        30,
        interval=0.01,
        message="the processor at work on the backlog",
    )
    system.processor.kill()  # no chance to finish, ack or requeue anything
    killed_at = ledger.committed()
    burst.wait()
    # Orders keep coming with no processor.
    wait_until(
        lambda: ledger.committed() > killed_at, 30, message="orders committed after the kill"
    )
    assert ledger.unprocessed() > 0
    system.processor = system.start_service("processor_service")
    fault_end = ledger.fault_ended()

    recovery = ledger.wait_recovered(fault_end)
    set_generation(amqp_uri, False)
    ledger.wait_drained(amqp_uri)
    audit(
        "processor SIGKILL mid-stream", ledger, metrics(system), processor_outputs(system), recovery
    )


def test_generator_killed_in_a_burst_of_creates_loses_no_event(
    make_pipeline, db_uri, amqp_uri, make_ledger
):
    """SIGKILL while creates commit and their events go out: every order
    committed before the kill either had its event confirmed or still has
    its outbox row, which the restarted generator publishes."""
    system = make_pipeline(db_uri, amqp_uri, ORDER_INTERVAL_SECONDS=INTERVAL).start()
    ledger = make_ledger(db_uri)
    bulk = eventlet.spawn(create_orders_in_bulk, amqp_uri, BULK_CALLS, BULK_SIZE)
    single = eventlet.spawn(create_orders, amqp_uri, BURST)
    wait_until(lambda: ledger.committed() >= BULK_SIZE, 30, message="creates under way")
    system.generator.kill()  # between commits and publishes, with no last pass
    committed_at_kill = ledger.committed()
    system.generator = system.start_service("generator_service")
    # Calls the dead generator had not answered are taken again after the restart.
    assert len(bulk.wait()) >= BULK_CALLS * BULK_SIZE
    assert len(single.wait()) >= BURST
    fault_end = ledger.fault_ended()
    recovery = ledger.wait_recovered(fault_end)
    set_generation(amqp_uri, False)
    ledger.wait_drained(amqp_uri)
    assert ledger.committed() >= committed_at_kill
    audit(
        "generator SIGKILL in a burst of creates",
        ledger,
        metrics(system),
        processor_outputs(system),
        recovery,
    )


def test_sigterm_to_every_service_mid_stream_leaves_no_partial_work(
    make_pipeline, db_uri, amqp_uri, make_ledger
):
    system = make_pipeline(
        db_uri, amqp_uri, ORDER_INTERVAL_SECONDS=INTERVAL, RPC_TIMEOUT_SECONDS=2
    ).start()
    ledger = make_ledger(db_uri)
    # Callers still waiting on create_order get their answer after the restart.
    burst = eventlet.spawn(create_orders, amqp_uri, BURST)
    # Pause the processor while a backlog builds up and it holds a batch of
    # it; SIGTERM is the first thing it sees when it resumes.
    system.processor.signal(signal.SIGSTOP)
    wait_until(lambda: ledger.unprocessed() >= BURST // 2, 30, message="a backlog")
    services = [system.generator, system.processor, system.gateway]
    for service in services:
        service.signal(signal.SIGTERM)
    system.processor.signal(signal.SIGCONT)
    exit_codes = wait_exited(services)
    assert exit_codes == [0, 0, 0], "a service did not stop cleanly on SIGTERM"
    # Whatever was in flight either finished (row and totals together) or
    # left no trace: the tables agree with each other while everything is down.
    assert ledger.orphan_rows() == 0
    assert ledger.totals_count() == ledger.processed()

    fault_end = ledger.fault_ended()
    system.start()
    recovery = ledger.wait_recovered(fault_end)
    assert len(burst.wait()) == BURST
    set_generation(amqp_uri, False)
    ledger.wait_drained(amqp_uri)
    audit(
        "SIGTERM to all services mid-stream",
        ledger,
        metrics(system),
        processor_outputs(system),
        recovery,
    )

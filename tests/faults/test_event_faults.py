"""OrderCreated events that never went out, came twice, or make no sense."""

import json
import signal
import time

from harness.broker import (
    HANDLER_QUEUE,
    handler_queue_messages,
    publish_order_created,
    queue_depth,
    take_messages,
)
from harness.processes import wait_until
from order_contract import DEAD_LETTER_QUEUE
from order_pipeline.reliable_events import ATTEMPT_HEADER, ERROR_HEADER
from tests.faults.ledger import audit
from tests.faults.services import metrics, processor_outputs
from tests.faults.traffic import commit_orders_without_event, create_orders


def test_orders_whose_event_was_never_sent_are_relayed_from_the_outbox(
    make_pipeline, db_uri, amqp_uri, make_ledger
):
    system = make_pipeline(db_uri, amqp_uri, GENERATE_ON_FIRST_START="false").start()
    ledger = make_ledger(db_uri)
    # Committed with their outbox rows, as the generator commits them, but
    # the publishing that follows never happens (as when the generator dies
    # right after the commit). No order commits in the running generator
    # meanwhile, so nothing wakes its background publisher: the periodic
    # relay alone sends them.
    stranded = commit_orders_without_event(db_uri, 20)
    fault_end = ledger.fault_ended()
    recovery = ledger.wait_recovered(fault_end, timeout=30)
    system.generator.wait_for_output("outbox relay published")
    assert max(stranded) == fault_end.last_order_id

    create_orders(amqp_uri, 10)  # and orders flow on as usual
    ledger.wait_drained(amqp_uri)
    figures = audit(
        "event dispatch lost after commit",
        ledger,
        metrics(system),
        processor_outputs(system),
        recovery,
    )
    assert figures.committed == 30


def test_a_duplicated_order_created_event_is_processed_once(
    make_pipeline, db_uri, amqp_uri, make_ledger
):
    system = make_pipeline(db_uri, amqp_uri, GENERATE_ON_FIRST_START="false").start()
    ledger = make_ledger(db_uri)
    # A second copy of each event queued behind the first, so that the two
    # are handled together or at the same time...
    system.processor.signal(signal.SIGSTOP)
    order_ids = create_orders(amqp_uri, 30)
    wait_until(lambda: ledger.outbox_size() == 0, 30, message="every OrderCreated published")
    publish_order_created(amqp_uri, [{"order_id": order_id} for order_id in order_ids])
    system.processor.signal(signal.SIGCONT)
    fault_end = ledger.fault_ended()
    recovery = ledger.wait_recovered(fault_end)
    # ...and a third long after it was processed.
    publish_order_created(amqp_uri, [{"order_id": order_id} for order_id in order_ids])

    # Every copy consumed and acked: none waiting, in flight, to be retried
    # or set aside.
    def all_consumed():
        queues = handler_queue_messages(amqp_uri)
        assert HANDLER_QUEUE in queues and DEAD_LETTER_QUEUE in queues, queues
        return not any(queues.values())

    wait_until(all_consumed, 30, interval=0.5, message="every copy consumed")
    ledger.wait_drained(amqp_uri)

    audit(
        "OrderCreated delivered 2-3 times",
        ledger,
        metrics(system),
        processor_outputs(system),
        recovery,
    )
    assert ledger.processed() == len(order_ids)


POISON = [
    ("empty payload", json.dumps({}), "application/json", "InvalidEvent"),
    ("order id not a number", json.dumps({"order_id": "x"}), "application/json", "InvalidEvent"),
    ("unknown order", json.dumps({"order_id": 987654321}), "application/json", "OrderNotFound"),
    ("not JSON", "this is not JSON {", "application/json", "cannot decode"),
    ("plain text", "order 12", "text/plain", "cannot decode"),
]


def test_messages_that_can_never_be_processed_are_dead_lettered_once(
    make_pipeline, db_uri, amqp_uri, make_ledger
):
    system = make_pipeline(db_uri, amqp_uri, GENERATE_ON_FIRST_START="false").start()
    ledger = make_ledger(db_uri)
    processor_pid = system.processor.process.pid
    for _, body, content_type, _ in POISON:
        publish_order_created(amqp_uri, [body], content_type)
    fault_end = ledger.fault_ended()
    # Good orders on either side of the bad ones are still processed.
    create_orders(amqp_uri, 5)

    wait_until(
        lambda: queue_depth(amqp_uri, DEAD_LETTER_QUEUE) >= len(POISON),
        30,
        message="every bad message on the dead-letter queue",
    )
    recovery = time.monotonic() - fault_end.at
    ledger.wait_drained(amqp_uri)
    create_orders(amqp_uri, 5)
    ledger.wait_drained(amqp_uri)
    audit(
        "poison messages dead-lettered",
        ledger,
        metrics(system),
        processor_outputs(system),
        recovery,
    )
    assert system.processor.running and system.processor.process.pid == processor_pid

    parked = take_messages(amqp_uri, DEAD_LETTER_QUEUE)
    assert sorted(body for body, _ in parked) == sorted(body for _, body, _, _ in POISON)
    for name, body, _, reason in POISON:
        headers = dict(parked)[body]
        assert headers[ATTEMPT_HEADER] == 1, f"{name} was retried"
        assert reason in headers[ERROR_HEADER], (name, headers[ERROR_HEADER])
    log = "".join(processor_outputs(system))
    assert log.count("set aside on " + DEAD_LETTER_QUEUE) == len(POISON)

"""The generator's background publisher: OrderCreated goes out after the
commit, from a greenthread of its own, against a real MariaDB database (and,
in the service, a real RabbitMQ vhost) of the test's own."""

import logging
import time
from contextlib import contextmanager

import eventlet
from kombu import Connection, Exchange, Queue

from generator_service import generation, store
from generator_service.outbox_publisher import OutboxPublisher
from harness.broker import take_messages
from harness.processes import wait_until
from harness.tables import sql
from order_contract import GENERATOR, ORDER_CREATED
from order_pipeline.times import utc_now
from tests.integration.conftest import SessionFactory
from tests.integration.test_generator_store import RecordingPublisher, outbox
from tests.support.services import InProcessServices

# A pause no test waits out: the publisher must not need it.
LONG_PAUSE = 3600


@contextmanager
def running(publisher):
    """`publisher.run()` in a greenthread, stopped (after its last pass) on exit."""
    thread = eventlet.spawn(publisher.run)
    try:
        yield thread
    finally:
        publisher.stop()
        with eventlet.Timeout(60):
            thread.wait()


def ordered(db, count=1):
    return [generation.create_order(db, 3)["id"] for _ in range(count)]


def test_a_woken_publisher_publishes_the_outbox_once(db):
    publish = RecordingPublisher()
    publisher = OutboxPublisher(db, publish, LONG_PAUSE)
    with running(publisher):
        order_ids = ordered(db, 3)
        publisher.wake()
        wait_until(lambda: outbox(db) == [], 30, message="outbox published")
        publisher.wake()
        order_ids += ordered(db)
        publisher.wake()
        wait_until(lambda: outbox(db) == [], 30, message="outbox published")
    assert [(event, payload["order_id"]) for event, payload in publish.published] == [
        (ORDER_CREATED, order_id) for order_id in order_ids
    ]


def test_after_a_failed_pass_it_pauses_however_often_it_is_woken(db):
    pause = 0.5
    publish = RecordingPublisher(routed=False)  # no queue to route to yet
    publisher = OutboxPublisher(db, publish, pause)
    (order_id,) = ordered(db)
    started = time.monotonic()
    with running(publisher):
        publisher.wake()
        wait_until(lambda: publish.calls >= 1, 30, message="a first attempt")
        for _ in range(40):  # an order committing every 0.05 s
            publisher.wake()
            eventlet.sleep(0.05)
        attempts, elapsed = publish.calls, time.monotonic() - started
        # At most one attempt per pause (a hot loop would make one per
        # wake-up, or thousands), and the event waits in the outbox.
        assert attempts <= 1 + elapsed / pause, (attempts, elapsed)
        assert outbox(db) == [order_id]

        publish.routed = True  # a processor has bound its queue
        publisher.wake()
        wait_until(lambda: outbox(db) == [], 30, message="outbox published")
    assert publish.published[-1] == (ORDER_CREATED, {"order_id": order_id})


def test_a_database_failure_does_not_end_the_publisher(db, caplog):
    publish = RecordingPublisher()
    unreachable = SessionFactory("mysql+pymysql://root@127.0.0.1:1/orders")
    publisher = OutboxPublisher(unreachable, publish, 0.1)
    (order_id,) = ordered(db)
    try:
        with running(publisher) as thread, caplog.at_level(logging.WARNING):
            publisher.wake()
            wait_until(
                lambda: "publishing the outbox failed" in caplog.text,
                30,
                message="the failure logged",
            )
            assert not thread.dead
            publisher.db = db  # the database is back
            wait_until(lambda: publisher.wake() or outbox(db) == [], 30, message="outbox published")
    finally:
        unreachable.engine.dispose()
    assert publish.published == [(ORDER_CREATED, {"order_id": order_id})]


def test_stopping_makes_a_last_pass_and_leaves_the_rest_in_the_outbox(db):
    publish = RecordingPublisher()
    publisher = OutboxPublisher(db, publish, LONG_PAUSE)
    with running(publisher):
        order_ids = ordered(db, 3)  # committed, the publisher not woken yet
    assert outbox(db) == []
    assert [payload["order_id"] for _, payload in publish.published] == order_ids

    unrouted = RecordingPublisher(routed=False)
    publisher = OutboxPublisher(db, unrouted, LONG_PAUSE)
    with running(publisher):
        order_ids = ordered(db, 2)
    assert unrouted.calls == 1
    assert outbox(db) == order_ids


# --- in the service, on the real broker ---------------------------------------------


def listen_for_order_created(amqp_uri, queue_name="order_created_listener"):
    """Bind a queue to OrderCreated, as a processor would; returns its name."""
    exchange = Exchange(f"{GENERATOR}.events", type="topic", durable=True)
    with Connection(amqp_uri) as connection:
        Queue(queue_name, exchange, routing_key=ORDER_CREATED, durable=True)(
            connection.channel()
        ).declare()
    return queue_name


def received(amqp_uri, queue_name):
    return [message.payload for message in take_messages(amqp_uri, queue_name)]


def test_the_service_publishes_an_order_as_it_commits_not_at_the_relay(db, db_uri, amqp_uri):
    queue = listen_for_order_created(amqp_uri)
    # The relay's first sweep, and any pause, long after the test.
    with (
        InProcessServices(db_uri, amqp_uri, OUTBOX_SWEEP_SECONDS=LONG_PAUSE) as services,
        services.start("generator").rpc() as rpc,
    ):
        order = rpc.order_generator.create_order(6)
        assert order["quantity"] == 6
        events = wait_until(
            lambda: received(amqp_uri, queue), 30, message="OrderCreated for the RPC's order"
        )
        assert events == [{"order_id": order["id"]}]

        rpc.order_generator.start()  # the timer's ticks are published as well
        ticked = []
        wait_until(
            lambda: ticked.extend(received(amqp_uri, queue)) or len(ticked) >= 2,
            30,
            message="OrderCreated for ticks",
        )
        rpc.order_generator.stop()
    ticked += received(amqp_uri, queue)
    order_ids = [row[0] for row in sql(db_uri, "SELECT id FROM orders ORDER BY id")]
    assert [event["order_id"] for event in events + ticked] == order_ids
    assert outbox(db) == []


def test_a_graceful_stop_publishes_what_was_committed(db, db_uri, amqp_uri):
    queue = listen_for_order_created(amqp_uri)
    with InProcessServices(db_uri, amqp_uri, OUTBOX_SWEEP_SECONDS=LONG_PAUSE) as services:
        services.start("generator")
        # Orders committed (as by a worker) whose wake-up has not come yet.
        with db.get_session() as session:
            order_ids = [store.add_order(session, 2, utc_now()).id for _ in range(3)]
        services.stop("generator")
    assert outbox(db) == []
    assert received(amqp_uri, queue) == [{"order_id": order_id} for order_id in order_ids]

"""How fast the generator's outbox goes out: N committed orders waiting in
the outbox, published by `generation.publish_outbox` with the generator's
RoutedEventPublisher (mandatory, confirmed) until the outbox is empty, in
this process, with no service running.

Twice: in batches of OUTBOX_BATCH rows (what the background publisher
takes), and one row at a time (what a lone create between two passes
costs), with the share of the time spent publishing (waiting on the
broker; the rest is the database's). A queue is bound for OrderCreated, as a processor's would be, so
every event is routed.
"""

import time

from kombu import Connection, Exchange, Queue
from sqlalchemy import create_engine

from bench.order_source import _Container, _Database
from generator_service import generation
from harness.processes import CONFIG
from harness.sandbox import sandbox
from harness.tables import scalar
from order_contract import GENERATOR, MAX_ORDERS_PER_CALL, ORDER_CREATED
from order_pipeline.config import load_config
from order_pipeline.extensions.event_publisher import RoutedEventPublisher

QUEUE = "bench_order_created"


def bind_queue(amqp_uri):
    exchange = Exchange(f"{GENERATOR}.events", type="topic", durable=True)
    with Connection(amqp_uri) as connection:
        Queue(QUEUE, exchange, routing_key=ORDER_CREATED, durable=True)(
            connection.channel()
        ).declare()


def fill_outbox(db, orders):
    for first in range(0, orders, MAX_ORDERS_PER_CALL):
        generation.create_orders(db, [3] * min(MAX_ORDERS_PER_CALL, orders - first))


def publish_rate(db, publish, db_uri, orders, batch):
    """(events per second published and their rows cleared, in batches of
    `batch` until the outbox is empty; the share of that time spent in the
    publisher, i.e. on the broker: the rest is the database's)."""
    in_publisher = [0.0]

    def timed_publish(*args):
        started = time.monotonic()
        try:
            return publish(*args)
        finally:
            in_publisher[0] += time.monotonic() - started

    started = time.monotonic()
    published = 0
    while True:
        taken, sent = generation.publish_outbox(db, timed_publish, limit=batch)
        published += sent
        if taken == 0:
            break
        if sent < taken:
            raise RuntimeError(f"{taken - sent} of {taken} events not published")
    seconds = time.monotonic() - started
    if published != orders or scalar(db_uri, "SELECT COUNT(*) FROM order_outbox") != 0:
        raise RuntimeError(f"{published} of {orders} events published")
    return orders / seconds, in_publisher[0] / seconds


def run_outbox_publish(log_dir, orders, single_orders):
    with sandbox(log_dir) as pipeline:
        config = load_config(CONFIG)
        config["AMQP_URI"] = pipeline.amqp_uri
        engine = create_engine(pipeline.db_uri)
        container = _Container(config)  # bind() holds it by a weak reference
        publisher = RoutedEventPublisher().bind(container, "publish")
        publisher.setup()
        try:
            db = _Database(engine)
            bind_queue(pipeline.amqp_uri)
            fill_outbox(db, orders)
            batched, batched_broker_share = publish_rate(
                db, publisher.publish, pipeline.db_uri, orders, generation.OUTBOX_BATCH
            )
            fill_outbox(db, single_orders)
            single, single_broker_share = publish_rate(
                db, publisher.publish, pipeline.db_uri, single_orders, 1
            )
        finally:
            publisher.stop()
            engine.dispose()
    return {
        "orders": orders,
        "batch": generation.OUTBOX_BATCH,
        "batched_events_per_second": batched,
        "batched_broker_share": batched_broker_share,
        "single_orders": single_orders,
        "single_events_per_second": single,
        "single_broker_share": single_broker_share,
    }

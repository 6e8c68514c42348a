"""A backlog: N committed orders whose OrderCreated events wait in the
processor's queue while no processor runs.

The orders are real rows in `orders` (inserted in bulk, ids 1..N in a fresh
database) and the events real OrderCreated messages on the generator's
exchange, routed to whatever queue the processor bound there. No outbox
rows are written: each event is published once, here, so the generator's
outbox relay has nothing to re-send.
"""

import random
import time

from sqlalchemy import insert

from generator_service.models import Order
from harness import broker
from harness.processes import wait_until
from order_contract import GENERATOR, OrderCreated
from order_pipeline.times import utc_now

INSERT_BATCH = 5000
QUANTITY_MAX = 100


def insert_orders(pipeline, count, seed=1):
    """Insert orders 1..count with random quantities; returns the ids."""
    rng = random.Random(seed)
    engine = pipeline.engine()
    try:
        for first in range(1, count + 1, INSERT_BATCH):
            ids = range(first, min(first + INSERT_BATCH, count + 1))
            now = utc_now()
            with engine.begin() as connection:
                connection.execute(
                    insert(Order),
                    [
                        {
                            "id": order_id,
                            "quantity": rng.randint(1, QUANTITY_MAX),
                            "created_at": now,
                        }
                        for order_id in ids
                    ],
                )
    finally:
        engine.dispose()
    return list(range(1, count + 1))


def queue_backlog(pipeline, count, source=GENERATOR):
    """Commit `count` orders and queue their events on the exchange of the
    `source` service (the generator's); the processor's queue must already
    be bound. Returns {"queues": [...], "seconds": ...}."""
    queues = broker.order_created_queues(
        pipeline.amqp_uri, pipeline.servers.rabbitmqctl, source=source
    )
    if not queues:
        raise RuntimeError("no queue is bound for OrderCreated; start a processor first")
    started = time.monotonic()
    order_ids = insert_orders(pipeline, count)
    broker.publish_order_created(
        pipeline.broker,
        [OrderCreated(i).to_payload() for i in order_ids],
        confirm=False,
        source=source,
    )
    for queue in queues:
        wait_until(
            lambda queue=queue: broker.queue_depth(pipeline.broker, queue) >= count,
            # Generous: a quorum queue on a busy 3-node cluster takes
            # unconfirmed publishes far slower than a classic one.
            max(60, count / 20),
            interval=0.2,
            message=f"{count} events in {queue}",
        )
    return {"queues": queues, "seconds": time.monotonic() - started}

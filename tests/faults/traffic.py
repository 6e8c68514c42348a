"""Ways for orders and OrderCreated events to reach the system, as the
scenarios need them: over the generator's RPC (as a client would), or
straight into the generator's tables (an order whose event was never sent).
Raw events on the broker (duplicates, malformed messages) come from
harness.broker."""

from contextlib import contextmanager

from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from generator_service import store
from order_pipeline.times import utc_now

RPC_TIMEOUT_SECONDS = 30


@contextmanager
def generator_rpc(amqp_uri):
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=RPC_TIMEOUT_SECONDS) as cluster:
        yield cluster.order_generator


def create_orders(amqp_uri, count, quantity=3):
    """`count` orders through create_order, sent at once; returns their ids."""
    with generator_rpc(amqp_uri) as generator:
        replies = [generator.create_order.call_async(quantity) for _ in range(count)]
        return [reply.result()["id"] for reply in replies]


def create_orders_in_bulk(amqp_uri, calls, per_call, quantity=3):
    """`calls` create_orders calls of `per_call` orders each, sent at once;
    returns the ids of every reply (a call the generator took again after
    a restart may answer with a second set of orders)."""
    with generator_rpc(amqp_uri) as generator:
        replies = [generator.create_orders.call_async([quantity] * per_call) for _ in range(calls)]
        return [order["id"] for reply in replies for order in reply.result()]


def set_generation(amqp_uri, running):
    """Turn the timer's order generation on or off, as POST /start or /stop."""
    with generator_rpc(amqp_uri) as generator:
        return generator.start() if running else generator.stop()


def commit_orders_without_event(db_uri, count, quantity=4):
    """Commit orders exactly as the generator does (order, outbox row and
    count in one transaction) but never publish their event: what is left
    when the generator dies, or the broker refuses, right after the commit."""
    engine = create_engine(db_uri)
    try:
        with Session(engine) as session, session.begin():
            orders = [store.add_order(session, quantity, utc_now()) for _ in range(count)]
            session.flush()
            return [order.id for order in orders]
    finally:
        engine.dispose()

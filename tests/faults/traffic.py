"""Ways for orders and OrderCreated events to reach the system, as the
scenarios need them: over the generator's RPC (as a client would), straight
into the generator's tables (an order whose event was never sent), or as raw
events on the broker (duplicates and malformed messages)."""
from contextlib import contextmanager

from kombu import Connection, Producer
from nameko.constants import PERSISTENT
from nameko.standalone.events import event_dispatcher, get_event_exchange
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from generator_service import store
from generator_service.events import ORDER_CREATED, SERVICE_NAME as GENERATOR
from generator_service.orders import utc_now

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


def publish_order_created(amqp_uri, payloads):
    """Dispatch OrderCreated with each payload, as the generator's nameko
    event dispatcher would (`{"order_id": 7}`, or anything else)."""
    dispatch = event_dispatcher({"AMQP_URI": amqp_uri})
    for payload in payloads:
        dispatch(GENERATOR, ORDER_CREATED, payload)


def publish_raw_order_created(amqp_uri, body, content_type="application/json"):
    """Publish any body as an OrderCreated event (malformed ones included)."""
    exchange = get_event_exchange(GENERATOR, {"AMQP_URI": amqp_uri})
    with Connection(amqp_uri) as connection:
        producer = Producer(connection.channel(), exchange=exchange)
        producer.publish(
            body, routing_key=ORDER_CREATED, content_type=content_type,
            content_encoding="utf-8", delivery_mode=PERSISTENT,
            declare=[exchange], retry=True)

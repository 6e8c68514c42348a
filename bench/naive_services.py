"""The baseline the drain is read against: the pipeline's job written the
plain nameko 2.14 way, with stock nameko only (bench/naive.py runs it).

It is what a first version looks like: the generator commits an order and
sends one OrderCreated event for it (EventDispatcher); the processor takes
one event per worker (@event_handler), confirms the order with one RPC to
the generator (RpcProxy), prices it with the project's pricing, stores it
and commits, one order per transaction, through a plain SQLAlchemy session
per worker. No outbox, batching, retries or idempotent store: it is a
yardstick for the benchmark, not a pipeline to run, and nothing outside
bench/ uses it. It keeps the services' tables (orders, order_process), so
the benchmark reads both pipelines the same way.

Each class runs in a process of its own, on the stock service container:

    SERVICE_CONTAINER_CLS=nameko.containers.ServiceContainer \\
        nameko run --config config.yml bench.naive_services:NaiveGenerator
"""

from decimal import Decimal
from weakref import WeakKeyDictionary

from nameko.events import EventDispatcher, event_handler
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy, rpc
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from generator_service.models import Order
from order_contract import ORDER_CREATED
from order_pipeline.times import iso_z, parse_iso_z, utc_now
from processor_service.models import OrderProcess
from processor_service.pricing import SimulatedMarket, execution_price

NAIVE_GENERATOR = "naive_generator"
NAIVE_PROCESSOR = "naive_processor"
GENERATOR_CLASS = "bench.naive_services:NaiveGenerator"
PROCESSOR_CLASS = "bench.naive_services:NaiveProcessor"
# The processor's default simulated market (PRICE_BASE, PRICE_MAX_STEP,
# PRICE_BAND), one per process as in the processor.
MARKET = SimulatedMarket(Decimal("100.00"), Decimal("0.005"), Decimal("0.10"))


class WorkerSession(DependencyProvider):
    """A SQLAlchemy session on DB_URI for each worker, closed when the
    worker ends (what nameko-sqlalchemy's DatabaseSession does)."""

    def setup(self):
        self.engine = create_engine(self.container.config["DB_URI"])
        self.sessions = WeakKeyDictionary()

    def stop(self):
        self.engine.dispose()

    def get_dependency(self, worker_ctx):
        session = self.sessions[worker_ctx] = Session(self.engine)
        return session

    def worker_teardown(self, worker_ctx):
        session = self.sessions.pop(worker_ctx, None)
        if session is not None:
            session.close()


class NaiveGenerator:
    name = NAIVE_GENERATOR

    db = WorkerSession()
    dispatch = EventDispatcher()

    @rpc
    def create_order(self, quantity):
        """5 -> {"id": 1, "quantity": 5, "created_at": "...Z"}, after its event is sent."""
        order = Order(quantity=quantity, created_at=utc_now())
        self.db.add(order)
        self.db.commit()
        self.dispatch(ORDER_CREATED, {"order_id": order.id})
        return self._as_dict(order)

    @rpc
    def get_order(self, order_id):
        """1 -> {"id": 1, "quantity": 5, "created_at": "...Z"}, or None."""
        order = self.db.get(Order, order_id)
        return None if order is None else self._as_dict(order)

    @staticmethod
    def _as_dict(order):
        return {"id": order.id, "quantity": order.quantity, "created_at": iso_z(order.created_at)}


class NaiveProcessor:
    name = NAIVE_PROCESSOR

    db = WorkerSession()
    generator = RpcProxy(NAIVE_GENERATOR)

    @event_handler(NAIVE_GENERATOR, ORDER_CREATED)
    def handle_order_created(self, payload):
        """{"order_id": 1}: confirm, price, store, print."""
        order = self.generator.get_order(payload["order_id"])
        unit_price = MARKET.unit_price()
        price = execution_price(order["quantity"], unit_price)
        self.db.add(
            OrderProcess(
                order_id=order["id"],
                unit_price=unit_price,
                execution_price=price,
                processed_at=utc_now(),
                order_created_at=parse_iso_z(order["created_at"]),
            )
        )
        self.db.commit()
        print(f"Order {order['id']} OrderExecutionPrice {price}", flush=True)

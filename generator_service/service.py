"""The order_generator nameko service: entrypoints only; the work is in
`generation` and `store`."""

import logging
import random
import time
from datetime import UTC, datetime

from generator_service import generation, retention, store
from generator_service.models import Base
from generator_service.orders import order_as_dict
from generator_service.outbox_publisher import BackgroundOutboxPublisher
from generator_service.settings import (
    generator_max_workers,
    generator_metrics_address,
    generator_settings,
    order_interval_seconds,
    order_retention,
    outbox_sweep_seconds,
)
from order_contract import (
    GENERATOR,
    MAX_ORDERS_PER_CALL,
    PROCESSOR,
    RECENT_ORDERS,
    InvalidArgument,
    InvalidOrderId,
    InvalidQuantity,
    validate_order_id,
    validate_order_ids,
    validate_recent_limit,
    validate_since,
)
from order_pipeline.extensions.checked_database import CheckedDatabase
from order_pipeline.extensions.heartbeats import Heartbeat
from order_pipeline.extensions.rpc import rpc
from order_pipeline.extensions.rpc_proxy import TimeoutRpcProxy
from order_pipeline.extensions.runtime_metrics import RuntimeMetrics
from order_pipeline.extensions.service_settings import Settings
from order_pipeline.extensions.shared_batches import SharedBatches
from order_pipeline.extensions.timer import configured_timer
from order_pipeline.extensions.tracing import Tracing
from order_pipeline.logs import log_order
from order_pipeline.retention import log_pass
from order_pipeline.settings import retention_interval_seconds

log = logging.getLogger(__name__)


class OrderGeneratorService:
    name = GENERATOR
    # Its own worker pool (order_pipeline.extensions.containers): more
    # create_order calls waiting share each transaction.
    read_max_workers = staticmethod(generator_max_workers)
    tracing = Tracing()

    db = CheckedDatabase(Base, on_setup=generation.prepare_state)
    # Publishes OrderCreated for committed orders, off the ticks' path.
    outbox = BackgroundOutboxPublisher()
    settings = Settings(generator_settings)
    rng = random.SystemRandom()
    # Concurrent create_order calls share one transaction (a group commit).
    shared_create = SharedBatches(MAX_ORDERS_PER_CALL)
    runtime_metrics = RuntimeMetrics(generator_metrics_address)
    heartbeat = Heartbeat()
    retention = Settings(order_retention)
    # Retention asks the processor which old orders it has results for.
    order_processor = TimeoutRpcProxy(PROCESSOR)

    @configured_timer(read_interval=order_interval_seconds)
    def generate_order(self):
        orders = generation.generate_tick(self.db, self.settings, self.rng)
        if orders:
            self.outbox.wake()
            self._log_created(orders)

    @configured_timer(read_interval=outbox_sweep_seconds)
    def relay_outbox(self):
        published = self.outbox.relay()
        if published:
            log.info("outbox relay published %d OrderCreated event(s)", published)
        generation.forget_expired_keys(self.db)

    @configured_timer(read_interval=retention_interval_seconds)
    def prune_orders(self):
        """Delete processed orders past ORDER_RETENTION_DAYS (when set)."""
        if not self.retention.on:
            return
        report = retention.prune_orders(self.db, self._processed_ids, self.retention)
        log_pass(log, report, "order(s)", "the processor has no result for them")

    def _processed_ids(self, order_ids):
        return self.order_processor.processed_order_ids(order_ids)

    @rpc(expected_exceptions=InvalidOrderId)
    def get_order(self, order_id):
        """`get_order(1)` -> {"id": 1, "quantity": 7, "created_at": "...Z"} or None."""
        validate_order_id(order_id)
        order = store.get_order(self.db.session, order_id)
        return None if order is None else order_as_dict(order)

    @rpc(expected_exceptions=InvalidOrderId)
    def get_orders(self, order_ids):
        """`get_orders([1, 2, 999])` -> the orders that exist, as get_order
        gives them (here 1 and 2), in one query. Used by the processor to
        confirm a batch of orders in one call."""
        orders = store.get_orders(self.db.session, validate_order_ids(order_ids))
        return [order_as_dict(order) for order in orders]

    @rpc(expected_exceptions=InvalidQuantity)
    def create_order(self, quantity):
        """`create_order(5)`: create one order now, on or off; its
        OrderCreated event goes out right after, in the background.
        Concurrent calls share one transaction."""
        order = generation.create_order(self.db, quantity, self.shared_create)
        self.outbox.wake()
        self._log_created([order])
        return order

    @rpc(expected_exceptions=(InvalidQuantity, InvalidArgument))
    def create_order_once(self, quantity, idempotency_key):
        """`create_order_once(5, "4f1c...")` -> {"order": {...}, "created": true}:
        create_order, unless `idempotency_key` already names an order made
        within IDEMPOTENCY_WINDOW; then that order and "created": false."""
        order, created = generation.create_order_once(self.db, quantity, idempotency_key)
        if created:
            self.outbox.wake()
            self._log_created([order])
        return {"order": order, "created": created}

    @rpc(expected_exceptions=InvalidQuantity)
    def create_orders(self, quantities):
        """`create_orders([5, 3])`: create one order per quantity now, all or
        none, in one transaction (at most MAX_ORDERS_PER_CALL quantities);
        returns the orders in the order given. Their OrderCreated events go
        out right after, in the background."""
        orders = generation.create_orders(self.db, quantities)
        self.outbox.wake()
        self._log_created(orders)
        return orders

    def _log_created(self, orders):
        if self.settings.log_created_orders:
            for order in orders:
                log_order(f"Order created: id={order['id']}", order["id"])

    @rpc
    def start(self):
        """Turn generation on; returns the status."""
        return self._set_running(True)

    @rpc
    def stop(self):
        """Turn generation off; returns the status."""
        return self._set_running(False)

    @rpc
    def status(self):
        """{"running": true, "interval_seconds": 2.0, "orders_created": 42}"""
        with self.db.get_session() as session:
            return generation.status(session, self.settings)

    @rpc(expected_exceptions=InvalidArgument)
    def recent_orders(self, limit=RECENT_ORDERS):
        """The last `limit` orders created, newest first, as get_order gives them."""
        orders = store.recent_orders(self.db.session, validate_recent_limit(limit))
        return [order_as_dict(order) for order in orders]

    @rpc(expected_exceptions=InvalidArgument)
    def created_per_second(self, since):
        """[[epoch second, orders created], ...] from `since` (an epoch
        second, at most CHART_SECONDS back) on; empty seconds left out."""
        since = validate_since(since, time.time())
        moment = datetime.fromtimestamp(since, UTC).replace(tzinfo=None)
        return [list(row) for row in store.created_per_second(self.db.session, moment)]

    @rpc
    def outbox_backlog(self):
        """How many committed orders still wait for the broker to take their event."""
        return store.outbox_size(self.db.session)

    def _set_running(self, running):
        return generation.set_running(self.db, running, self.settings)

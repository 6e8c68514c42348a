"""The order_processor nameko service: entrypoints only; the work is in
`processing` and `store`."""

import logging

from order_contract import GENERATOR, ORDER_CREATED, PROCESSOR, InvalidOrderId, validate_order_id
from order_pipeline.batch_events import batch_event_handler
from order_pipeline.database import CheckedDatabase
from order_pipeline.rpc import TimeoutRpcProxy
from order_pipeline.rpc_entrypoint import rpc
from processor_service import processing, store
from processor_service.dependencies import PriceSource
from processor_service.models import Base

log = logging.getLogger(__name__)


class OrderProcessorService:
    name = PROCESSOR

    db = CheckedDatabase(Base)
    order_generator = TimeoutRpcProxy(GENERATOR)
    prices = PriceSource()

    @batch_event_handler(GENERATOR, ORDER_CREATED)
    def handle_order_created(self, payloads):
        """payloads: a batch of OrderCreated events, [{"order_id": 42}, ...].

        Returns one outcome per event (None, or the error that failed it);
        the handler acks, retries or dead-letters each accordingly.
        """
        outcome = processing.process_order_batch(
            payloads, self.order_generator.get_orders, self.prices, self.db
        )
        if outcome.stored:
            print("\n".join(map(processing.execution_line, outcome.stored)), flush=True)
        if outcome.duplicates:
            log.info(
                "%d redelivered OrderCreated event(s) for orders already processed: ignored",
                outcome.duplicates,
            )
        return outcome.failures

    @rpc
    def metrics(self):
        """{"total_orders_processed": 3, "average_execution_price": "1234.50"}"""
        return processing.metrics_as_dict(*store.totals(self.db.session))

    @rpc(expected_exceptions=InvalidOrderId)
    def get_result(self, order_id):
        """The processing result of an order, or None if not processed yet."""
        row = store.get_result(self.db.session, validate_order_id(order_id))
        return None if row is None else processing.result_as_dict(row)

"""The order_processor nameko service: entrypoints only; the work is in
`processing` and `store`."""
import logging

from nameko.rpc import rpc

from generator_service.events import ORDER_CREATED, SERVICE_NAME as GENERATOR
from generator_service.exceptions import InvalidOrderId
from generator_service.orders import validate_order_id
from order_pipeline.database import CheckedDatabase
from order_pipeline.reliable_events import reliable_event_handler
from order_pipeline.rpc import TimeoutRpcProxy
from processor_service import SERVICE_NAME, processing, store
from processor_service.dependencies import PriceSource
from processor_service.models import Base

log = logging.getLogger(__name__)


class OrderProcessorService:
    name = SERVICE_NAME

    db = CheckedDatabase(Base)
    order_generator = TimeoutRpcProxy(GENERATOR)
    prices = PriceSource()

    @reliable_event_handler(GENERATOR, ORDER_CREATED)
    def handle_order_created(self, payload):
        """payload: {"order_id": 42}"""
        result = processing.process_order_created(
            payload, self.order_generator.get_order, self.prices, self.db)
        if result is None:
            log.info("order %s was already processed; event ignored", payload["order_id"])
        else:
            print(processing.execution_line(result), flush=True)

    @rpc
    def metrics(self):
        """{"total_orders_processed": 3, "average_execution_price": "1234.50"}"""
        return processing.metrics_as_dict(*store.totals(self.db.session))

    @rpc(expected_exceptions=InvalidOrderId)
    def get_result(self, order_id):
        """The processing result of an order, or None if not processed yet."""
        row = store.get_result(self.db.session, validate_order_id(order_id))
        return None if row is None else processing.result_as_dict(row)

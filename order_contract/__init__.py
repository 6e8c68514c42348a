"""What the order pipeline's services agree on, and nothing else.

Services never import each other: the generator, the processor and the
gateway each import this package (and `order_pipeline` plumbing) for the
names they call each other by, the events they exchange, the errors that
cross an RPC boundary and the limits both sides check.

    from order_contract import GENERATOR, OrderCreated, InvalidQuantity
"""

from order_contract.errors import InvalidOrderId, InvalidPayload, InvalidQuantity
from order_contract.events import ORDER_CREATED, OrderCreated
from order_contract.limits import (
    MAX_IDS_PER_CALL,
    MAX_ORDER_ID,
    MAX_QUANTITY,
    validate_order_id,
    validate_order_ids,
    validate_quantity,
)
from order_contract.services import GATEWAY, GENERATOR, PROCESSOR

__all__ = [
    "GATEWAY",
    "GENERATOR",
    "MAX_IDS_PER_CALL",
    "MAX_ORDER_ID",
    "MAX_QUANTITY",
    "ORDER_CREATED",
    "PROCESSOR",
    "InvalidOrderId",
    "InvalidPayload",
    "InvalidQuantity",
    "OrderCreated",
    "validate_order_id",
    "validate_order_ids",
    "validate_quantity",
]

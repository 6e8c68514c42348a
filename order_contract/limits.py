"""Limits both sides of a call check, and the validators that enforce them."""

from order_contract.errors import InvalidOrderId, InvalidQuantity

# orders.quantity is a signed INT; keep well inside it.
MAX_QUANTITY = 1_000_000
# orders.id is a signed BIGINT.
MAX_ORDER_ID = 2**63 - 1
# One get_orders call answers for at most this many ids.
MAX_IDS_PER_CALL = 1000


def is_int(value: object) -> bool:
    # bool is an int subclass; True is not a quantity or an id.
    return isinstance(value, int) and not isinstance(value, bool)


def validate_quantity(quantity: object) -> int:
    if not is_int(quantity):
        raise InvalidQuantity(f"quantity must be an integer, got {quantity!r}")
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidQuantity(f"quantity must be between 1 and {MAX_QUANTITY}, got {quantity}")
    return quantity


def validate_order_id(order_id: object) -> int:
    if not is_int(order_id):
        raise InvalidOrderId(f"order id must be an integer, got {order_id!r}")
    if not 1 <= order_id <= MAX_ORDER_ID:
        raise InvalidOrderId(f"order id must be between 1 and {MAX_ORDER_ID}")
    return order_id


def validate_order_ids(order_ids: object) -> list[int]:
    if not isinstance(order_ids, (list, tuple)):
        raise InvalidOrderId(f"order ids must be a list, got {order_ids!r:.100}")
    if len(order_ids) > MAX_IDS_PER_CALL:
        raise InvalidOrderId(f"at most {MAX_IDS_PER_CALL} order ids per call")
    return [validate_order_id(order_id) for order_id in order_ids]

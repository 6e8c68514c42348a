"""Limits both sides of a call check, and the validators that enforce them."""

from datetime import timedelta

from order_contract.errors import InvalidArgument, InvalidOrderId, InvalidQuantity

# orders.quantity is a signed INT; keep well inside it.
MAX_QUANTITY = 1_000_000
# orders.id is a signed BIGINT.
MAX_ORDER_ID = 2**63 - 1
# One get_orders call answers for at most this many ids.
MAX_IDS_PER_CALL = 1000
# One create_orders call creates at most this many orders, in one
# transaction: large enough to amortize a call, small enough that the
# transaction and its reply stay short.
MAX_ORDERS_PER_CALL = 1000
# An idempotency key (POST /orders' Idempotency-Key header) names one order
# for this long; after it, the same key creates a new order.
IDEMPOTENCY_WINDOW = timedelta(hours=24)
MAX_IDEMPOTENCY_KEY_CHARS = 255


def is_int(value: object) -> bool:
    # bool is an int subclass; True is not a quantity or an id.
    return isinstance(value, int) and not isinstance(value, bool)


def validate_quantity(quantity: object) -> int:
    if not is_int(quantity):
        raise InvalidQuantity(f"quantity must be an integer, got {quantity!r}")
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidQuantity(f"quantity must be between 1 and {MAX_QUANTITY}, got {quantity}")
    return quantity


def validate_quantities(quantities: object) -> list[int]:
    """A create_orders argument: a non-empty list of at most
    MAX_ORDERS_PER_CALL valid quantities."""
    if not isinstance(quantities, (list, tuple)):
        raise InvalidQuantity(f"quantities must be a list, got {quantities!r:.100}")
    if not quantities:
        raise InvalidQuantity("quantities must not be empty")
    if len(quantities) > MAX_ORDERS_PER_CALL:
        raise InvalidQuantity(
            f"at most {MAX_ORDERS_PER_CALL} quantities per call, got {len(quantities)}"
        )
    checked = []
    for index, quantity in enumerate(quantities):
        try:
            checked.append(validate_quantity(quantity))
        except InvalidQuantity as error:
            raise InvalidQuantity(f"quantities[{index}]: {error}") from None
    return checked


def validate_idempotency_key(key: object) -> str:
    """1 to MAX_IDEMPOTENCY_KEY_CHARS visible ASCII characters (a UUID, say)."""
    if not isinstance(key, str):
        raise InvalidArgument(f"idempotency key must be a string, got {key!r:.100}")
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_CHARS:
        raise InvalidArgument(
            f"idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters, got {len(key)}"
        )
    if not all("!" <= char <= "~" for char in key):
        raise InvalidArgument(
            "idempotency key must be visible ASCII characters, no spaces (a UUID, say)"
        )
    return key


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

"""Order rules, free of nameko and SQL: validation and the public shape."""
from dataclasses import dataclass
from datetime import datetime, timezone

from generator_service.exceptions import InvalidOrderId, InvalidQuantity

# orders.quantity is a signed INT; keep well inside it.
MAX_QUANTITY = 1_000_000
# orders.id is a signed BIGINT.
MAX_ORDER_ID = 2**63 - 1


@dataclass(frozen=True)
class GeneratorSettings:
    interval_seconds: float
    generate_on_first_start: bool
    quantity_min: int
    quantity_max: int
    outbox_sweep_seconds: float


def validate_quantity(quantity):
    # bool is an int subclass; True is not a quantity.
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidQuantity("quantity must be an integer, got {!r}".format(quantity))
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidQuantity(
            "quantity must be between 1 and {}, got {}".format(MAX_QUANTITY, quantity))
    return quantity


def validate_order_id(order_id):
    if isinstance(order_id, bool) or not isinstance(order_id, int):
        raise InvalidOrderId("order id must be an integer, got {!r}".format(order_id))
    if not 1 <= order_id <= MAX_ORDER_ID:
        raise InvalidOrderId("order id must be between 1 and {}".format(MAX_ORDER_ID))
    return order_id


# One get_orders call answers for at most this many ids.
MAX_IDS_PER_CALL = 1000


def validate_order_ids(order_ids):
    if not isinstance(order_ids, (list, tuple)):
        raise InvalidOrderId("order ids must be a list, got {!r:.100}".format(order_ids))
    if len(order_ids) > MAX_IDS_PER_CALL:
        raise InvalidOrderId("at most {} order ids per call".format(MAX_IDS_PER_CALL))
    return [validate_order_id(order_id) for order_id in order_ids]


def random_quantity(rng, settings):
    return rng.randint(settings.quantity_min, settings.quantity_max)


def utc_now():
    """Naive UTC, as stored in DATETIME columns."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def isoformat_utc(moment):
    return moment.isoformat(timespec="microseconds") + "Z"


def order_as_dict(order):
    return {
        "id": order.id,
        "quantity": order.quantity,
        "created_at": isoformat_utc(order.created_at),
    }


def status_as_dict(state, settings):
    return {
        "running": bool(state.running),
        "interval_seconds": settings.interval_seconds,
        "orders_created": state.orders_created,
    }

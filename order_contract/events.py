"""The events services publish, each with its payload's one schema.

The generator builds a payload with `to_payload()`; a consumer parses one
with `from_payload()`, which refuses anything else with InvalidPayload.
"""

from dataclasses import dataclass

from order_contract.errors import InvalidPayload
from order_contract.limits import MAX_ORDER_ID, is_int

ORDER_CREATED = "OrderCreated"


@dataclass(frozen=True)
class OrderCreated:
    """Published by GENERATOR once an order is committed: `{"order_id": 42}`."""

    order_id: int

    def to_payload(self) -> dict:
        return {"order_id": self.order_id}

    @classmethod
    def from_payload(cls, payload: object) -> "OrderCreated":
        order_id = payload.get("order_id") if isinstance(payload, dict) else None
        if not is_int(order_id) or not 1 <= order_id <= MAX_ORDER_ID:
            raise InvalidPayload(
                f"{ORDER_CREATED} needs a positive integer order_id, got {payload!r:.200}"
            )
        return cls(order_id)

"""Errors that cross a service boundary.

`deserialize_to_instance` registers each type with nameko, so a caller that
imports this package (the gateway, the processor, `nameko shell`) receives
it as this type rather than as a generic RemoteError, also after it has
been passed on through another RPC hop.
"""

from nameko.exceptions import deserialize_to_instance


@deserialize_to_instance
class InvalidQuantity(ValueError):
    """An order quantity that is not an integer from 1 to MAX_QUANTITY, or
    a list of them that is not a list, is empty or is longer than
    MAX_ORDERS_PER_CALL."""


@deserialize_to_instance
class InvalidOrderId(ValueError):
    """An order id that is not an integer from 1 to MAX_ORDER_ID, or a list
    of them that is not a list or is longer than MAX_IDS_PER_CALL."""


@deserialize_to_instance
class InvalidArgument(ValueError):
    """Any other RPC argument outside what the contract allows (a limit, a
    dead-letter id, a moment)."""


@deserialize_to_instance
class InvalidPayload(ValueError):
    """An event payload that does not follow its schema: also a dead letter's
    edit that does not (see order_contract.triage)."""


@deserialize_to_instance
class UnknownDeadLetter(LookupError):
    """No dead letter has this id."""


@deserialize_to_instance
class DeadLetterNotParked(ValueError):
    """The dead letter is no longer parked (it was replayed, discarded or
    edited), or another caller is acting on it right now."""

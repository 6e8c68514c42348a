"""Errors order_generator raises over RPC.

`deserialize_to_instance` lets a nameko caller that imports this module catch
them as these types rather than as a generic RemoteError.
"""
from nameko.exceptions import deserialize_to_instance


@deserialize_to_instance
class InvalidQuantity(ValueError):
    """create_order was given something that is not a valid quantity."""


@deserialize_to_instance
class InvalidOrderId(ValueError):
    """An order id that is not a positive integer in range."""

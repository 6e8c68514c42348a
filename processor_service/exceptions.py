"""Errors order_processor raises."""

from order_pipeline.extensions.reliable_events import PermanentFailure


class InvalidEvent(PermanentFailure):
    """An OrderCreated payload that does not follow the contract's schema."""


class OrderNotFound(PermanentFailure):
    """The generator has no such order."""


class PriceUnavailable(Exception):
    """The price source could not give a price now (retried later)."""

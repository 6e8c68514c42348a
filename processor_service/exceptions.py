"""Errors order_processor raises."""
from order_pipeline.reliable_events import PermanentFailure


class InvalidEvent(PermanentFailure):
    """An OrderCreated payload without a usable order_id."""


class OrderNotFound(PermanentFailure):
    """The generator has no such order."""


class PriceUnavailable(Exception):
    """The price source could not give a price now (retried later)."""

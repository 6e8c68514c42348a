"""order_processor's price source, chosen by config, and its dead letters."""

import json

from nameko.extensions import DependencyProvider

from order_contract import DEAD_LETTER_QUEUE, ORDER_CREATED_QUEUE, InvalidPayload, OrderCreated
from order_pipeline.dead_letter_queue import DeadLetterQueue
from order_pipeline.errors import StartupError
from order_pipeline.settings import PriceSettings, amqp_uri, price_settings
from processor_service.pricing import HttpPriceFeed, SimulatedMarket


def price_source(settings: PriceSettings):
    """An object with `unit_price() -> Decimal`, as the settings describe."""
    if settings.source == "http":
        return HttpPriceFeed(settings.feed_url, timeout=settings.feed_timeout_seconds)
    try:
        return SimulatedMarket(
            base=settings.base, max_step=settings.max_step, band=settings.band, seed=settings.seed
        )
    except ValueError as exc:
        raise StartupError(f"PRICE_BASE/PRICE_MAX_STEP/PRICE_BAND: {exc}") from None


class PriceSource(DependencyProvider):
    """Injects the price source, shared by workers (the simulated walk is
    one market, not one per worker)."""

    def setup(self):
        self.source = price_source(price_settings(self.container.config))

    def get_dependency(self, worker_ctx):
        return self.source


def order_id_of(body_text: str) -> int | None:
    """The order a dead-lettered body is about, if it is a readable
    OrderCreated payload."""
    try:
        return OrderCreated.from_payload(json.loads(body_text)).order_id
    except (ValueError, RecursionError, InvalidPayload):
        return None


class DeadLetters(DependencyProvider):
    """Injects the DeadLetterQueue of the OrderCreated handler's queue."""

    def setup(self):
        self.queue = DeadLetterQueue(
            amqp_uri(self.container.config), DEAD_LETTER_QUEUE, ORDER_CREATED_QUEUE, order_id_of
        )

    def get_dependency(self, worker_ctx):
        return self.queue

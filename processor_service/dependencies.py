"""order_processor's price source, chosen by config."""

from nameko.extensions import DependencyProvider

from order_pipeline.errors import StartupError
from order_pipeline.settings import PriceSettings, price_settings
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

"""order_processor's price source, chosen by config."""
from order_pipeline.errors import StartupError
from nameko.extensions import DependencyProvider

from order_pipeline.config import setting
from processor_service.pricing import HttpPriceFeed, SimulatedMarket
from decimal import Decimal


def price_source_from_config(config):
    kind = setting(config, "PRICE_SOURCE", str).strip().lower()
    if kind == "simulated":
        seed = config.get("PRICE_SEED")
        try:
            return SimulatedMarket(
                base=setting(config, "PRICE_BASE", Decimal),
                max_step=setting(config, "PRICE_MAX_STEP", Decimal),
                band=setting(config, "PRICE_BAND", Decimal),
                seed=None if seed in (None, "") else str(seed),
            )
        except ValueError as exc:
            raise StartupError("PRICE_BASE/PRICE_MAX_STEP/PRICE_BAND: {}".format(exc))
    if kind == "http":
        url = setting(config, "PRICE_FEED_URL", str)
        if not url.startswith(("http://", "https://")):
            raise StartupError("PRICE_SOURCE=http needs PRICE_FEED_URL (http:// or https://)")
        return HttpPriceFeed(
            url, timeout=setting(config, "PRICE_FEED_TIMEOUT_SECONDS", float, minimum=0.001))
    raise StartupError(
        "PRICE_SOURCE must be 'simulated' or 'http', got {!r}".format(kind))


class PriceSource(DependencyProvider):
    """Injects an object with `unit_price() -> Decimal`, shared by workers
    (the simulated walk is one market, not one per worker)."""

    def setup(self):
        self.source = price_source_from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.source

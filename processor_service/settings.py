"""order_processor's settings, each read and checked by one function.

The OrderCreated handler's batching and retry settings (EVENT_BATCH_*,
RETRY_*) are read by the extensions that use them
(`order_pipeline.extensions.batch_events`, `.reliable_events`).
"""

from dataclasses import dataclass
from decimal import Decimal

from order_pipeline.config import setting
from order_pipeline.errors import StartupError
from order_pipeline.settings import (
    MetricsAddress,
    Retention,
    metrics_address,
    retention_batch_size,
)


@dataclass(frozen=True)
class PriceSettings:
    source: str  # "simulated" or "http"
    base: Decimal
    max_step: Decimal
    band: Decimal
    seed: str | None
    feed_url: str
    feed_timeout_seconds: float


PRICE_SOURCES = ("simulated", "http")


def price_settings(config: dict) -> PriceSettings:
    source = setting(config, "PRICE_SOURCE", str).strip().lower()
    if source not in PRICE_SOURCES:
        raise StartupError(f"PRICE_SOURCE must be 'simulated' or 'http', got {source!r}")
    feed_url = setting(config, "PRICE_FEED_URL", str)
    if source == "http" and not feed_url.startswith(("http://", "https://")):
        raise StartupError("PRICE_SOURCE=http needs PRICE_FEED_URL (http:// or https://)")
    return PriceSettings(
        source=source,
        base=setting(config, "PRICE_BASE", Decimal),
        max_step=setting(config, "PRICE_MAX_STEP", Decimal),
        band=setting(config, "PRICE_BAND", Decimal),
        seed=setting(config, "PRICE_SEED", str) or None,
        feed_url=feed_url,
        feed_timeout_seconds=setting(config, "PRICE_FEED_TIMEOUT_SECONDS", float, minimum=0.001),
    )


def processor_metrics_address(config: dict) -> MetricsAddress | None:
    return metrics_address(config, "PROCESSOR_METRICS_ADDRESS")


def result_retention(config: dict) -> Retention:
    """RESULT_RETENTION_DAYS: results are kept this many days after
    processing, and as long as their order exists, then deleted (0: kept
    for ever)."""
    return Retention(
        days=setting(config, "RESULT_RETENTION_DAYS", int, minimum=0),
        batch_size=retention_batch_size(config),
    )

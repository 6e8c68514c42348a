"""order_generator's settings, each read and checked by one function.

A bad value is a StartupError naming the setting (`nameko run` prints it as
one line and exits with status 1). The service reads its group once, in
`setup()`, through `order_pipeline.extensions.service_settings.Settings`.
"""

from dataclasses import dataclass

from order_contract import MAX_ORDERS_PER_CALL, MAX_QUANTITY
from order_pipeline.config import setting
from order_pipeline.errors import StartupError
from order_pipeline.settings import (
    MetricsAddress,
    Retention,
    metrics_address,
    retention_batch_size,
)


def order_interval_seconds(config: dict) -> float:
    return setting(config, "ORDER_INTERVAL_SECONDS", float, minimum=0.001)


def outbox_sweep_seconds(config: dict) -> float:
    return setting(config, "OUTBOX_SWEEP_SECONDS", float, minimum=0.01)


@dataclass(frozen=True)
class GeneratorSettings:
    interval_seconds: float
    generate_on_first_start: bool
    quantity_min: int
    quantity_max: int
    # Orders each tick creates, in one transaction: the timer runs one tick
    # at a time, so this, not the interval, lifts its rate past what one
    # transaction per tick allows.
    orders_per_tick: int = 1
    # LOG_CREATED_ORDERS: an "Order created" line for each order.
    log_created_orders: bool = True


def generator_settings(config: dict) -> GeneratorSettings:
    settings = GeneratorSettings(
        interval_seconds=order_interval_seconds(config),
        generate_on_first_start=setting(config, "GENERATE_ON_FIRST_START", bool),
        quantity_min=setting(config, "ORDER_QUANTITY_MIN", int, minimum=1),
        quantity_max=setting(config, "ORDER_QUANTITY_MAX", int, minimum=1),
        orders_per_tick=setting(config, "ORDERS_PER_TICK", int, minimum=1),
        log_created_orders=setting(config, "LOG_CREATED_ORDERS", bool),
    )
    if settings.orders_per_tick > MAX_ORDERS_PER_CALL:
        raise StartupError(f"ORDERS_PER_TICK must not exceed {MAX_ORDERS_PER_CALL}")
    if not settings.quantity_min <= settings.quantity_max <= MAX_QUANTITY:
        raise StartupError(
            "ORDER_QUANTITY_MIN must not exceed ORDER_QUANTITY_MAX, "
            f"which must not exceed {MAX_QUANTITY}"
        )
    return settings


def generator_max_workers(config: dict) -> int:
    """The generator's worker pool (and its RPC prefetch): concurrent
    create_order calls share one transaction, as many as there are workers
    waiting, so a larger pool makes the shared transactions larger."""
    return setting(config, "GENERATOR_MAX_WORKERS", int, minimum=1)


def generator_metrics_address(config: dict) -> MetricsAddress | None:
    return metrics_address(config, "GENERATOR_METRICS_ADDRESS")


def order_retention(config: dict) -> Retention:
    """ORDER_RETENTION_DAYS: processed orders are kept this many days after
    their creation, then deleted (0: kept for ever)."""
    return Retention(
        days=setting(config, "ORDER_RETENTION_DAYS", int, minimum=0),
        batch_size=retention_batch_size(config),
    )

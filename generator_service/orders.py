"""Order rules, free of nameko and SQL: random quantities, timestamps and
the public shape of an order and of the generator's status."""

from datetime import UTC, datetime

from order_pipeline.settings import GeneratorSettings


def random_quantity(rng, settings: GeneratorSettings) -> int:
    return rng.randint(settings.quantity_min, settings.quantity_max)


def utc_now() -> datetime:
    """Naive UTC, as stored in DATETIME columns."""
    return datetime.now(UTC).replace(tzinfo=None)


def isoformat_utc(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds") + "Z"


def order_as_dict(order) -> dict:
    return {
        "id": order.id,
        "quantity": order.quantity,
        "created_at": isoformat_utc(order.created_at),
    }


def status_as_dict(state, orders_created: int, settings: GeneratorSettings) -> dict:
    return {
        "running": bool(state.running),
        "interval_seconds": settings.interval_seconds,
        "orders_created": orders_created,
    }

"""Order rules, free of nameko and SQL: random quantities and the public shape of an order and of the generator's status."""

from generator_service.settings import GeneratorSettings
from order_pipeline.times import iso_z


def random_quantity(rng, settings: GeneratorSettings) -> int:
    return rng.randint(settings.quantity_min, settings.quantity_max)


def order_as_dict(order) -> dict:
    return {
        "id": order.id,
        "quantity": order.quantity,
        "created_at": iso_z(order.created_at),
    }


def status_as_dict(state, orders_created: int, settings: GeneratorSettings) -> dict:
    return {
        "running": bool(state.running),
        "interval_seconds": settings.interval_seconds,
        "orders_created": orders_created,
    }

"""order_generator's settings, read once from config."""
from order_pipeline.errors import StartupError

from generator_service.orders import MAX_QUANTITY, GeneratorSettings
from order_pipeline.config import setting


def parse_settings(config):
    settings = GeneratorSettings(
        interval_seconds=setting(config, "ORDER_INTERVAL_SECONDS", float, minimum=0.001),
        generate_on_first_start=setting(config, "GENERATE_ON_FIRST_START", bool),
        quantity_min=setting(config, "ORDER_QUANTITY_MIN", int, minimum=1),
        quantity_max=setting(config, "ORDER_QUANTITY_MAX", int, minimum=1),
        outbox_sweep_seconds=setting(config, "OUTBOX_SWEEP_SECONDS", float, minimum=0.01),
    )
    if not settings.quantity_min <= settings.quantity_max <= MAX_QUANTITY:
        raise StartupError(
            "ORDER_QUANTITY_MIN must not exceed ORDER_QUANTITY_MAX, "
            "which must not exceed {}".format(MAX_QUANTITY))
    return settings

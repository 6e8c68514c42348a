import random
from datetime import datetime

from generator_service.models import Order
from generator_service.orders import order_as_dict, random_quantity
from generator_service.settings import generator_settings
from order_pipeline.config import load_config


def test_order_as_dict_is_json_friendly_utc():
    order = Order(id=7, quantity=3, created_at=datetime(2026, 1, 2, 3, 4, 5, 6))
    assert order_as_dict(order) == {
        "id": 7,
        "quantity": 3,
        "created_at": "2026-01-02T03:04:05.000006Z",
    }


def test_random_quantity_stays_in_the_configured_range():
    settings = generator_settings(
        {**load_config(), "ORDER_QUANTITY_MIN": 3, "ORDER_QUANTITY_MAX": 5}
    )
    rng = random.Random(0)
    assert {random_quantity(rng, settings) for _ in range(200)} == {3, 4, 5}

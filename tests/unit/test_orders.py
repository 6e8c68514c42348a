from datetime import datetime

import pytest
from order_pipeline.errors import StartupError

from generator_service.exceptions import InvalidOrderId, InvalidQuantity
from generator_service.orders import (
    MAX_ORDER_ID, MAX_QUANTITY, order_as_dict, random_quantity, validate_order_id,
    validate_quantity)
from generator_service.models import Order
from generator_service.settings import parse_settings
from order_pipeline.config import load_config


@pytest.mark.parametrize("quantity", [1, 42, MAX_QUANTITY])
def test_valid_quantities_pass(quantity):
    assert validate_quantity(quantity) == quantity


@pytest.mark.parametrize("quantity", [
    0, -1, MAX_QUANTITY + 1, 10**30, True, False, 1.0, 2.5, "5", None, [5], {"q": 5}])
def test_invalid_quantities_raise_a_named_error(quantity):
    with pytest.raises(InvalidQuantity):
        validate_quantity(quantity)


@pytest.mark.parametrize("order_id", [0, -5, MAX_ORDER_ID + 1, True, "1", 1.0, None])
def test_invalid_order_ids_raise_a_named_error(order_id):
    with pytest.raises(InvalidOrderId):
        validate_order_id(order_id)


def test_order_as_dict_is_json_friendly_utc():
    order = Order(id=7, quantity=3, created_at=datetime(2026, 1, 2, 3, 4, 5, 6))
    assert order_as_dict(order) == {
        "id": 7, "quantity": 3, "created_at": "2026-01-02T03:04:05.000006Z"}


def test_random_quantity_stays_in_the_configured_range():
    import random
    settings = parse_settings({**load_config(), "ORDER_QUANTITY_MIN": 3, "ORDER_QUANTITY_MAX": 5})
    rng = random.Random(0)
    seen = {random_quantity(rng, settings) for _ in range(200)}
    assert seen == {3, 4, 5}


def test_default_settings_match_the_documented_ones(monkeypatch):
    for name in ("ORDER_INTERVAL_SECONDS", "GENERATE_ON_FIRST_START",
                 "ORDER_QUANTITY_MIN", "ORDER_QUANTITY_MAX"):
        monkeypatch.delenv(name, raising=False)
    settings = parse_settings(load_config())
    assert settings.interval_seconds == 2
    assert settings.generate_on_first_start is True
    assert (settings.quantity_min, settings.quantity_max) == (1, 100)


def test_settings_come_from_environment_variables(monkeypatch):
    monkeypatch.setenv("ORDER_INTERVAL_SECONDS", "0.25")
    monkeypatch.setenv("GENERATE_ON_FIRST_START", "false")
    settings = parse_settings(load_config())
    assert settings.interval_seconds == 0.25
    assert settings.generate_on_first_start is False


@pytest.mark.parametrize("overrides", [
    {"ORDER_INTERVAL_SECONDS": 0},
    {"ORDER_INTERVAL_SECONDS": "often"},
    {"ORDER_QUANTITY_MIN": 10, "ORDER_QUANTITY_MAX": 5},
    {"ORDER_QUANTITY_MAX": MAX_QUANTITY + 1},
    {"GENERATE_ON_FIRST_START": "maybe"},
])
def test_bad_settings_fail_at_start_naming_the_setting(overrides):
    with pytest.raises(StartupError) as error:
        parse_settings({**load_config(), **overrides})
    assert any(name in str(error.value) for name in overrides)

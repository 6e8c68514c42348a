from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal

import pytest

from processor_service import processing
from processor_service.exceptions import InvalidEvent, OrderNotFound
from processor_service.processing import (
    execution_line, metrics_as_dict, parse_order_created, price_order, process_order_created)


@pytest.mark.parametrize("payload", [
    {}, None, "5", [5], {"order_id": None}, {"order_id": "5"}, {"order_id": 5.0},
    {"order_id": True}, {"order_id": 0}, {"order_id": -3}, {"order_id": 2**63},
    {"id": 5},
])
def test_unusable_payloads_are_invalid_events(payload):
    with pytest.raises(InvalidEvent):
        parse_order_created(payload)


def test_a_good_payload_gives_its_order_id():
    assert parse_order_created({"order_id": 12, "extra": "ignored"}) == 12


def test_price_order_multiplies_and_rounds():
    moment = datetime(2026, 1, 1)
    result = price_order({"id": 4, "quantity": 3}, Decimal("10.1235"), moment)
    assert result.order_id == 4
    assert result.unit_price == Decimal("10.1235")
    assert result.execution_price == Decimal("30.37")  # 30.3705
    assert result.processed_at == moment


class FixedPrice:
    def __init__(self, price):
        self.price = price

    def unit_price(self):
        return self.price


class RecordingDb:
    """Stands in for nameko-sqlalchemy's DatabaseWrapper: get_session()."""

    def __init__(self):
        self.sessions = []

    @contextmanager
    def get_session(self):
        self.sessions.append("session")
        yield "session"


def test_process_order_created_confirms_prices_and_stores(monkeypatch):
    stored = []
    monkeypatch.setattr(processing.store, "add_result",
                        lambda session, result: stored.append(result) or True)
    asked = []

    def get_order(order_id):
        asked.append(order_id)
        return {"id": order_id, "quantity": 7, "created_at": "..."}

    result = process_order_created(
        {"order_id": 9}, get_order, FixedPrice(Decimal("2.5050")), RecordingDb())
    assert asked == [9]
    assert stored == [result]
    assert result.execution_price == Decimal("17.54")  # 17.535 half-up
    assert execution_line(result) == "Order 9 OrderExecutionPrice 17.54"


def test_an_already_processed_order_returns_none(monkeypatch):
    monkeypatch.setattr(processing.store, "add_result", lambda session, result: False)
    result = process_order_created(
        {"order_id": 9}, lambda i: {"id": i, "quantity": 1}, FixedPrice(Decimal("1")),
        RecordingDb())
    assert result is None


def test_an_order_the_generator_does_not_know_is_not_stored(monkeypatch):
    monkeypatch.setattr(processing.store, "add_result",
                        lambda *args: pytest.fail("must not store"))
    with pytest.raises(OrderNotFound):
        process_order_created({"order_id": 9}, lambda i: None, FixedPrice(Decimal("1")),
                              RecordingDb())


@pytest.mark.parametrize("count, total, average", [
    (0, Decimal("0"), None),
    (3, Decimal("10.00"), "3.33"),
    (2, Decimal("0.01"), "0.01"),     # 0.005 rounds half-up
    (8, Decimal("0.04"), "0.01"),     # 0.005
    (3, Decimal("20.00"), "6.67"),
])
def test_metrics_average_is_a_decimal_string_rounded_half_up(count, total, average):
    assert metrics_as_dict(count, total) == {
        "total_orders_processed": count, "average_execution_price": average}

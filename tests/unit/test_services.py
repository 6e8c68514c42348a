"""The services' entrypoints, with nameko's worker_factory: dependencies
replaced, no broker or database. The SQL itself is covered by
tests/integration against MariaDB."""

from decimal import Decimal
from unittest.mock import Mock

import pytest
from nameko.testing.services import worker_factory

from generator_service import OrderGeneratorService
from order_contract import InvalidOrderId, InvalidQuantity
from order_pipeline.extensions.heartbeats import new_identity
from order_pipeline.logs import ORDER_LOGGER
from processor_service import OrderProcessorService, processing
from processor_service.exceptions import OrderNotFound

# What the processor's Heartbeat dependency gives its workers.
INSTANCE = new_identity("order_processor")


class FixedPrice:
    def unit_price(self):
        return Decimal("10.0050")


def order_lines(caplog):
    return [(r.getMessage(), r.order_id) for r in caplog.records if r.name == ORDER_LOGGER]


def test_processor_logs_the_execution_price_of_each_new_order(caplog, monkeypatch):
    caplog.set_level("INFO", ORDER_LOGGER)
    monkeypatch.setattr(processing.store, "add_results", lambda session, results: results)
    service = worker_factory(OrderProcessorService, prices=FixedPrice(), heartbeat=INSTANCE)
    service.order_generator.get_orders.return_value = [
        {"id": 5, "quantity": 3},
        {"id": 6, "quantity": 1},
    ]

    outcomes = service.handle_order_created([{"order_id": 5}, {"order_id": 6}])

    assert outcomes == [None, None]
    service.order_generator.get_orders.assert_called_once_with([5, 6])
    assert order_lines(caplog) == [
        ("Order 5 OrderExecutionPrice 30.02", 5),  # 30.015
        ("Order 6 OrderExecutionPrice 10.01", 6),  # 10.005
    ]


def test_processor_logs_nothing_for_redelivered_orders(caplog, monkeypatch):
    caplog.set_level("INFO", ORDER_LOGGER)
    monkeypatch.setattr(processing.store, "add_results", lambda session, results: [])
    service = worker_factory(OrderProcessorService, prices=FixedPrice(), heartbeat=INSTANCE)
    service.order_generator.get_orders.return_value = [{"id": 5, "quantity": 3}]

    assert service.handle_order_created([{"order_id": 5}]) == [None]
    assert order_lines(caplog) == []


def test_processor_fails_an_order_the_generator_does_not_have(monkeypatch):
    monkeypatch.setattr(processing.store, "add_results", Mock(side_effect=AssertionError))
    service = worker_factory(OrderProcessorService, prices=FixedPrice(), heartbeat=INSTANCE)
    service.order_generator.get_orders.return_value = []
    (outcome,) = service.handle_order_created([{"order_id": 5}])
    assert isinstance(outcome, OrderNotFound)


@pytest.mark.parametrize("bad_id", ["1", -1, 0, None, 1.5])
def test_generator_get_order_rejects_bad_ids_before_touching_the_database(bad_id):
    service = worker_factory(OrderGeneratorService)
    with pytest.raises(InvalidOrderId):
        service.get_order(bad_id)
    assert not service.db.mock_calls


@pytest.mark.parametrize("bad_quantity", [0, -5, "3", None, True, 2.0])
def test_generator_create_order_rejects_bad_quantities_before_writing(bad_quantity):
    service = worker_factory(OrderGeneratorService)
    with pytest.raises(InvalidQuantity):
        service.create_order(bad_quantity)
    assert not service.db.mock_calls
    assert not service.shared_create.mock_calls  # never joins a shared transaction
    assert not service.outbox.mock_calls


@pytest.mark.parametrize("bad_id", ["7", 0])
def test_processor_get_result_rejects_bad_ids(bad_id):
    service = worker_factory(OrderProcessorService)
    with pytest.raises(InvalidOrderId):
        service.get_result(bad_id)

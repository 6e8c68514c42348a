"""The services' entrypoints, with nameko's worker_factory: dependencies
replaced, no broker or database. The SQL itself is covered by
tests/integration against MariaDB."""
from decimal import Decimal
from unittest.mock import Mock

import pytest
from nameko.testing.services import worker_factory

from generator_service import OrderGeneratorService
from generator_service.exceptions import InvalidOrderId, InvalidQuantity
from processor_service import OrderProcessorService, processing
from processor_service.exceptions import OrderNotFound


class FixedPrice:
    def unit_price(self):
        return Decimal("10.0050")


def test_processor_prints_the_execution_price_of_each_new_order(capsys, monkeypatch):
    monkeypatch.setattr(processing.store, "add_result", lambda session, result: True)
    service = worker_factory(OrderProcessorService, prices=FixedPrice())
    service.order_generator.get_order.return_value = {"id": 5, "quantity": 3}

    service.handle_order_created({"order_id": 5})

    service.order_generator.get_order.assert_called_once_with(5)
    assert capsys.readouterr().out == "Order 5 OrderExecutionPrice 30.02\n"  # 30.015


def test_processor_prints_nothing_for_a_redelivered_order(capsys, monkeypatch):
    monkeypatch.setattr(processing.store, "add_result", lambda session, result: False)
    service = worker_factory(OrderProcessorService, prices=FixedPrice())
    service.order_generator.get_order.return_value = {"id": 5, "quantity": 3}

    service.handle_order_created({"order_id": 5})

    assert capsys.readouterr().out == ""


def test_processor_refuses_an_order_the_generator_does_not_have(monkeypatch):
    monkeypatch.setattr(processing.store, "add_result", Mock(side_effect=AssertionError))
    service = worker_factory(OrderProcessorService, prices=FixedPrice())
    service.order_generator.get_order.return_value = None
    with pytest.raises(OrderNotFound):
        service.handle_order_created({"order_id": 5})


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
    assert not service.publish.mock_calls


@pytest.mark.parametrize("bad_id", ["7", 0])
def test_processor_get_result_rejects_bad_ids(bad_id):
    service = worker_factory(OrderProcessorService)
    with pytest.raises(InvalidOrderId):
        service.get_result(bad_id)

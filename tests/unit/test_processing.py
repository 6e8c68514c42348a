from datetime import datetime
from decimal import Decimal

import pytest

from processor_service import processing
from processor_service.exceptions import InvalidEvent, OrderNotFound
from processor_service.processing import (
    execution_line,
    metrics_as_dict,
    parse_order_created,
    price_order,
    process_order_batch,
)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        None,
        "5",
        [5],
        {"order_id": None},
        {"order_id": "5"},
        {"order_id": 5.0},
        {"order_id": True},
        {"order_id": 0},
        {"order_id": -3},
        {"order_id": 2**63},
        {"id": 5},
    ],
)
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


class FakeSession:
    """A session whose transaction always commits."""

    def flush(self):
        pass

    commit = rollback = close = invalidate = flush


class RecordingDb:
    """Stands in for nameko-sqlalchemy's DatabaseWrapper: get_session()."""

    def get_session(self):
        return FakeSession()


class Generator:
    """Stands in for the RPC proxy: knows some orders, records the calls."""

    def __init__(self, *orders):
        self.orders = {order["id"]: order for order in orders}
        self.calls = []

    def get_orders(self, order_ids):
        self.calls.append(order_ids)
        return [self.orders[i] for i in order_ids if i in self.orders]


@pytest.fixture
def stored(monkeypatch):
    """What add_results is given; it reports all of them as newly stored."""
    stored = []

    def add_results(session, results):
        stored.extend(results)
        return results

    monkeypatch.setattr(processing.store, "add_results", add_results)
    return stored


def test_a_batch_is_confirmed_in_one_call_priced_and_stored(stored):
    generator = Generator({"id": 9, "quantity": 7}, {"id": 10, "quantity": 2})
    outcome = process_order_batch(
        [{"order_id": 9}, {"order_id": 10}],
        generator.get_orders,
        FixedPrice(Decimal("2.5050")),
        RecordingDb(),
    )
    assert generator.calls == [[9, 10]]
    assert outcome.failures == [None, None]
    assert [(r.order_id, r.execution_price) for r in outcome.stored] == [
        (9, Decimal("17.54")),
        (10, Decimal("5.01")),
    ]  # 17.535 and 5.01, half-up
    assert stored == outcome.stored
    assert execution_line(outcome.stored[0]) == "Order 9 OrderExecutionPrice 17.54"


def test_bad_events_and_unknown_orders_fail_alone(stored):
    generator = Generator({"id": 9, "quantity": 1})
    outcome = process_order_batch(
        [{"order_id": "x"}, {"order_id": 9}, {"order_id": 404}],
        generator.get_orders,
        FixedPrice(Decimal("1")),
        RecordingDb(),
    )
    assert generator.calls == [[9, 404]]
    assert isinstance(outcome.failures[0], InvalidEvent)
    assert outcome.failures[1] is None
    assert isinstance(outcome.failures[2], OrderNotFound)
    assert [r.order_id for r in stored] == [9]


def test_the_same_order_twice_in_a_batch_is_priced_once(stored):
    outcome = process_order_batch(
        [{"order_id": 9}, {"order_id": 9}],
        Generator({"id": 9, "quantity": 1}).get_orders,
        FixedPrice(Decimal("1")),
        RecordingDb(),
    )
    assert outcome.failures == [None, None]
    assert [r.order_id for r in stored] == [9]


def test_a_batch_of_only_bad_events_touches_neither_generator_nor_database(monkeypatch):
    monkeypatch.setattr(
        processing.store, "add_results", lambda *args: pytest.fail("must not store")
    )
    generator = Generator()
    outcome = process_order_batch(
        [{}, {"order_id": -1}], generator.get_orders, FixedPrice(Decimal("1")), RecordingDb()
    )
    assert generator.calls == []
    assert all(isinstance(f, InvalidEvent) for f in outcome.failures)


@pytest.mark.parametrize(
    "count, total, average",
    [
        (0, Decimal("0"), None),
        (3, Decimal("10.00"), "3.33"),
        (2, Decimal("0.01"), "0.01"),  # 0.005 rounds half-up
        (8, Decimal("0.04"), "0.01"),  # 0.005
        (3, Decimal("20.00"), "6.67"),
    ],
)
def test_metrics_average_is_a_decimal_string_rounded_half_up(count, total, average):
    assert metrics_as_dict(count, total) == {
        "total_orders_processed": count,
        "average_execution_price": average,
    }


def duplicate_key_error():
    from pymysql.err import IntegrityError as DriverError
    from sqlalchemy.exc import IntegrityError

    return IntegrityError("INSERT", {}, DriverError(1062, "Duplicate entry"))


def test_a_concurrent_duplicate_insert_is_checked_again_not_failed(monkeypatch):
    calls = []

    def add_results(session, results):
        calls.append(results)
        if len(calls) == 1:
            raise duplicate_key_error()  # another processor got there first
        return []  # the second check sees it stored

    monkeypatch.setattr(processing.store, "add_results", add_results)
    outcome = process_order_batch(
        [{"order_id": 9}],
        Generator({"id": 9, "quantity": 1}).get_orders,
        FixedPrice(Decimal("1")),
        RecordingDb(),
    )
    assert outcome.failures == [None]
    assert outcome.stored == [] and outcome.duplicates == 1
    assert len(calls) == 2


def test_other_integrity_errors_fail_the_batch(monkeypatch):
    from pymysql.err import IntegrityError as DriverError
    from sqlalchemy.exc import IntegrityError

    def add_results(session, results):
        raise IntegrityError("INSERT", {}, DriverError(1452, "foreign key"))

    monkeypatch.setattr(processing.store, "add_results", add_results)
    with pytest.raises(IntegrityError):
        process_order_batch(
            [{"order_id": 9}],
            Generator({"id": 9, "quantity": 1}).get_orders,
            FixedPrice(Decimal("1")),
            RecordingDb(),
        )

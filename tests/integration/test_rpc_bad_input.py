"""The services' RPC methods under bad input, over real RPC.

A caller that imports `generator_service.exceptions` gets the named error
type back (not a RemoteError), and a refused call writes nothing.
"""

from decimal import Decimal

import pytest
from nameko.exceptions import IncorrectSignature, RemoteError

from harness.tables import sql
from order_contract import (
    MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_ORDER_ID,
    MAX_ORDERS_PER_CALL,
    InvalidArgument,
    InvalidOrderId,
    InvalidQuantity,
)
from tests.support.services import InProcessServices, wait_processed

MISSING_ID = 987654321

BAD_QUANTITIES = [
    "5",
    "",
    5.0,
    1.5,
    float("nan"),
    float("inf"),
    Decimal("5"),
    None,
    True,
    False,
    [5],
    {"quantity": 5},
    0,
    -1,
    -(10**12),
    10**12,
    1_000_001,
    2**63,
    10**40,
]
BAD_ORDER_IDS = [
    "1",
    "",
    1.0,
    float("nan"),
    Decimal("1"),
    None,
    True,
    False,
    [1],
    {"id": 1},
    0,
    -1,
    MAX_ORDER_ID + 1,
    10**40,
]


def written(db_uri):
    """Everything create_order writes, as counts. Not the outbox: the
    background publisher empties it at any moment, and an outbox row cannot
    exist without its order (a foreign key), so the orders count covers it."""
    ((orders, created),) = sql(
        db_uri,
        "SELECT (SELECT COUNT(*) FROM orders), "
        "(SELECT COALESCE(SUM(orders_created), 0) FROM order_counts)",
    )
    ((keys,),) = sql(db_uri, "SELECT COUNT(*) FROM idempotency_keys")
    return {"orders": orders, "orders_created": created, "keys": keys}


@pytest.fixture(scope="module")
def services(make_database, make_vhost):
    with InProcessServices(make_database(), make_vhost()) as running:
        yield running.start("generator", "processor")


@pytest.fixture(scope="module")
def rpc(services):
    with services.rpc() as proxy:
        yield proxy


@pytest.fixture(scope="module")
def processed_order(services, rpc):
    order = rpc.order_generator.create_order(4)
    wait_processed(services)
    return order


@pytest.mark.parametrize("quantity", BAD_QUANTITIES, ids=repr)
def test_create_order_refuses_a_bad_quantity_and_writes_nothing(services, rpc, quantity):
    before = written(services.db_uri)
    with pytest.raises(InvalidQuantity):
        rpc.order_generator.create_order(quantity)
    with pytest.raises(InvalidQuantity):
        rpc.order_generator.create_order(quantity=quantity)
    assert written(services.db_uri) == before


def test_create_order_with_the_wrong_arguments_writes_nothing(services, rpc):
    before = written(services.db_uri)
    with pytest.raises(IncorrectSignature):
        rpc.order_generator.create_order()
    with pytest.raises(IncorrectSignature):
        rpc.order_generator.create_order(1, 2)
    with pytest.raises(IncorrectSignature):
        rpc.order_generator.create_order(amount=1)
    assert written(services.db_uri) == before


def test_a_good_quantity_is_written_once(services, rpc):
    before = written(services.db_uri)
    order = rpc.order_generator.create_order(7)
    assert order["quantity"] == 7
    after = written(services.db_uri)
    assert after["orders"] == before["orders"] + 1
    assert after["orders_created"] == before["orders_created"] + 1


BAD_QUANTITY_LISTS = [
    [],
    [1] * (MAX_ORDERS_PER_CALL + 1),
    "5",
    5,
    None,
    {"quantities": [5]},
    [5, 0],
    [5, "6"],
    [5, True],
    [5, 10**40],
]


@pytest.mark.parametrize("quantities", BAD_QUANTITY_LISTS, ids=lambda q: repr(q)[:40])
def test_create_orders_refuses_a_bad_list_and_writes_nothing(services, rpc, quantities):
    before = written(services.db_uri)
    with pytest.raises(InvalidQuantity):
        rpc.order_generator.create_orders(quantities)
    assert written(services.db_uri) == before


def test_create_orders_writes_every_order_once(services, rpc):
    before = written(services.db_uri)
    orders = rpc.order_generator.create_orders([2, 8, 1])
    assert [order["quantity"] for order in orders] == [2, 8, 1]
    assert [rpc.order_generator.get_order(order["id"]) for order in orders] == orders
    after = written(services.db_uri)
    assert after["orders"] == before["orders"] + 3
    assert after["orders_created"] == before["orders_created"] + 3


@pytest.mark.parametrize(
    "key", ["", "a b", "ключ", "x" * (MAX_IDEMPOTENCY_KEY_CHARS + 1), None, 5, ["k"]], ids=repr
)
def test_create_order_once_refuses_a_bad_key_and_writes_nothing(services, rpc, key):
    before = written(services.db_uri)
    with pytest.raises(InvalidArgument):
        rpc.order_generator.create_order_once(5, key)
    with pytest.raises(InvalidQuantity):
        rpc.order_generator.create_order_once(0, "good-key")
    assert written(services.db_uri) == before


def test_create_order_once_creates_once_per_key(services, rpc):
    before = written(services.db_uri)
    first = rpc.order_generator.create_order_once(3, "rpc-key")
    assert first["created"] is True and first["order"]["quantity"] == 3
    assert rpc.order_generator.create_order_once(3, "rpc-key") == {
        "order": first["order"],
        "created": False,
    }
    after = written(services.db_uri)
    assert (after["orders"], after["keys"]) == (before["orders"] + 1, before["keys"] + 1)


def test_bad_quantities_are_invalid_quantity_not_a_generic_remote_error(rpc):
    with pytest.raises(InvalidQuantity) as raised:
        rpc.order_generator.create_order("lots")
    assert not isinstance(raised.value, RemoteError)
    assert "quantity" in str(raised.value)


@pytest.mark.parametrize("order_id", BAD_ORDER_IDS, ids=repr)
def test_get_order_refuses_a_bad_id(rpc, order_id):
    with pytest.raises(InvalidOrderId):
        rpc.order_generator.get_order(order_id)


@pytest.mark.parametrize("order_id", BAD_ORDER_IDS, ids=repr)
def test_get_result_refuses_a_bad_id(rpc, order_id):
    with pytest.raises(InvalidOrderId):
        rpc.order_processor.get_result(order_id)


@pytest.mark.parametrize("order_id", [MISSING_ID, MAX_ORDER_ID])
def test_a_missing_order_and_result_are_none(rpc, order_id):
    assert rpc.order_generator.get_order(order_id) is None
    assert rpc.order_processor.get_result(order_id) is None


def test_an_existing_order_and_its_result_are_returned(rpc, processed_order):
    assert rpc.order_generator.get_order(processed_order["id"]) == processed_order
    result = rpc.order_processor.get_result(processed_order["id"])
    assert result["order_id"] == processed_order["id"]
    assert Decimal(result["execution_price"]) == (4 * Decimal(result["unit_price"])).quantize(
        Decimal("0.01")
    )

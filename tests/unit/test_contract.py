"""The contract between the services: validation, the OrderCreated payload,
and errors that keep their type across an RPC boundary."""

import pytest
from nameko.exceptions import deserialize, serialize

from order_contract import (
    MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_IDS_PER_CALL,
    MAX_ORDER_ID,
    MAX_ORDERS_PER_CALL,
    MAX_QUANTITY,
    InvalidArgument,
    InvalidOrderId,
    InvalidPayload,
    InvalidQuantity,
    OrderCreated,
    validate_idempotency_key,
    validate_order_id,
    validate_order_ids,
    validate_quantities,
    validate_quantity,
)


@pytest.mark.parametrize("quantity", [1, 42, MAX_QUANTITY])
def test_valid_quantities_pass(quantity):
    assert validate_quantity(quantity) == quantity


@pytest.mark.parametrize(
    "quantity", [0, -1, MAX_QUANTITY + 1, 10**30, True, False, 1.0, 2.5, "5", None, [5], {"q": 5}]
)
def test_invalid_quantities_raise_a_named_error(quantity):
    with pytest.raises(InvalidQuantity):
        validate_quantity(quantity)


@pytest.mark.parametrize("order_id", [1, MAX_ORDER_ID])
def test_valid_order_ids_pass(order_id):
    assert validate_order_id(order_id) == order_id


@pytest.mark.parametrize("order_id", [0, -5, MAX_ORDER_ID + 1, True, "1", 1.0, None])
def test_invalid_order_ids_raise_a_named_error(order_id):
    with pytest.raises(InvalidOrderId):
        validate_order_id(order_id)


def test_order_id_lists_are_bounded():
    assert validate_order_ids((1, 2)) == [1, 2]
    assert len(validate_order_ids([1] * MAX_IDS_PER_CALL)) == MAX_IDS_PER_CALL
    for bad in ([1] * (MAX_IDS_PER_CALL + 1), "1,2", None, [1, "2"]):
        with pytest.raises(InvalidOrderId):
            validate_order_ids(bad)


def test_quantity_lists_are_bounded_and_name_the_bad_entry():
    assert validate_quantities((3, 1)) == [3, 1]
    assert len(validate_quantities([1] * MAX_ORDERS_PER_CALL)) == MAX_ORDERS_PER_CALL
    with pytest.raises(InvalidQuantity, match=rf"at most {MAX_ORDERS_PER_CALL} quantities"):
        validate_quantities([1] * (MAX_ORDERS_PER_CALL + 1))
    with pytest.raises(InvalidQuantity, match="must not be empty"):
        validate_quantities([])
    with pytest.raises(InvalidQuantity, match=r"quantities\[2\]: quantity must be between"):
        validate_quantities([1, 2, 0])
    for bad in ("1,2", None, 5, {"quantity": 5}, [1, "2"], [True]):
        with pytest.raises(InvalidQuantity):
            validate_quantities(bad)


def test_idempotency_keys_are_short_visible_ascii():
    for good in ("a", "4f1c2b9e-0c1d-4b8e-9a57-3f0e2d1c6b7a", "~" * MAX_IDEMPOTENCY_KEY_CHARS):
        assert validate_idempotency_key(good) == good
    for bad in ("", " ", "a b", "tab\t", "é", "x" * (MAX_IDEMPOTENCY_KEY_CHARS + 1), None, 5):
        with pytest.raises(InvalidArgument, match="idempotency key"):
            validate_idempotency_key(bad)


def test_order_created_payload_round_trips():
    payload = OrderCreated(42).to_payload()
    assert payload == {"order_id": 42}
    assert OrderCreated.from_payload(payload) == OrderCreated(42)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"order_id": "7"},
        {"order_id": 0},
        {"order_id": True},
        {"order_id": 2**63},
        [7],
        "7",
        None,
    ],
)
def test_an_order_created_payload_off_the_schema_is_refused(payload):
    with pytest.raises(InvalidPayload):
        OrderCreated.from_payload(payload)


@pytest.mark.parametrize("error_type", [InvalidQuantity, InvalidOrderId])
def test_rpc_errors_arrive_as_their_own_type(error_type):
    received = deserialize(serialize(error_type("bad argument")))
    assert type(received) is error_type
    assert str(received) == "bad argument"

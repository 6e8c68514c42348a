"""Failure triage without a server: the contract's checks of what the
triage calls take, the gateway's reading of an edit and of the audit
trail's query, and the share of recent orders a group affects."""

import pytest
from nameko.exceptions import deserialize, serialize
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway.errors import BadRequest, status_and_code
from gateway.request_body import read_edit
from gateway.triage import read_audit_query, share, with_shares
from order_contract import (
    DeadLetterNotParked,
    InvalidArgument,
    InvalidPayload,
    UnknownDeadLetter,
    validate_actor,
    validate_before,
    validate_bounded,
    validate_dead_letter_id,
    validate_group,
)

# --- the contract -------------------------------------------------------------------


def test_an_actor_is_a_name_and_a_token_fingerprint_or_a_direct_rpc_caller():
    actor = {"name": "control-next", "token": "sha256:0123456789ab"}
    assert validate_actor(actor) == actor
    assert validate_actor({"name": "control", "token": None}) == {"name": "control", "token": None}
    assert validate_actor(None) == {"name": "rpc", "token": None}


@pytest.mark.parametrize(
    "actor",
    [
        "control",
        {"name": "control"},
        {"name": "Control", "token": None},
        {"name": "control", "token": "Qx7-tEsT_9kLmZ2vR8pWn4HjY6cBf3Ud"},  # a token itself
        {"name": "control", "token": "sha256:0123456789abcdef"},  # more than the fingerprint
        {"name": "control", "token": None, "extra": 1},
        {"name": "x" * 40, "token": None},
    ],
)
def test_anything_else_is_no_actor(actor):
    with pytest.raises(InvalidArgument):
        validate_actor(actor)


def test_ids_groups_limits_and_pages_are_checked():
    assert validate_dead_letter_id("9f1c2a7b3d4e5f60") == "9f1c2a7b3d4e5f60"
    assert validate_group("5d41402abc4b2a76") == "5d41402abc4b2a76"
    for bad in ("9F1C2A7B3D4E5F60", "9f1c", None, 7, "groups0000000000"):
        with pytest.raises(InvalidArgument):
            validate_dead_letter_id(bad)
        with pytest.raises(InvalidArgument):
            validate_group(bad)
    assert validate_bounded("limit", 100, 100) == 100
    for bad in (0, 101, True, "5", 2.0):
        with pytest.raises(InvalidArgument):
            validate_bounded("limit", bad, 100)
    assert validate_before(None) is None and validate_before(7) == 7
    for bad in (0, -1, 2**63, "7", True):
        with pytest.raises(InvalidArgument):
            validate_before(bad)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (InvalidPayload("OrderCreated needs a positive integer order_id"), 400, "INVALID_PAYLOAD"),
        (UnknownDeadLetter("no dead letter 9f1c2a7b3d4e5f60"), 404, "NOT_FOUND"),
        (DeadLetterNotParked("dead letter 9f1c2a7b3d4e5f60 is replayed"), 409, "CONFLICT"),
    ],
)
def test_the_triage_errors_cross_rpc_as_themselves_and_answer_their_status(error, status, code):
    again = deserialize(serialize(error))
    assert type(again) is type(error) and str(again) == str(error)
    assert status_and_code(again) == (status, code)


# --- the gateway's reading of requests ----------------------------------------------------


def request(path="/dead-letters/audit", query=None, data=b"", headers=None):
    return Request(
        EnvironBuilder(
            path=path,
            method="GET" if query is not None else "POST",
            query_string=query,
            data=data,
            headers=headers,
        ).get_environ()
    )


@pytest.mark.parametrize(
    ("data", "payload"),
    [
        (b'{"payload": {"order_id": 7}}', {"order_id": 7}),
        (b'{"payload": {"order_id": "7"}}', {"order_id": "7"}),  # the processor judges it
        (b'{"payload": null}', None),
    ],
)
def test_an_edit_is_the_payload_of_a_json_object(data, payload):
    assert read_edit(request(data=data)) == payload


@pytest.mark.parametrize(
    "data", [b"", b"{", b"[1]", b"{}", b'{"order_id": 7}', b'{"payload": 1, "more": 2}', b"\xff"]
)
def test_anything_else_is_a_bad_request_before_the_processor_is_asked(data):
    with pytest.raises(BadRequest):
        read_edit(request(data=data))


def test_a_chunked_edit_is_refused():
    chunked = request(data=b'{"payload": {}}', headers={"Transfer-Encoding": "chunked"})
    with pytest.raises(BadRequest):
        read_edit(chunked)


@pytest.mark.parametrize(
    ("query", "page"),
    [
        ("", (None, 20)),
        ("limit=5", (None, 5)),
        ("before=42&limit=100", (42, 100)),
        ("before=0042", (42, 20)),
    ],
)
def test_the_audit_query_gives_a_page(query, page):
    assert read_audit_query(request(query=query)) == page


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=x",
        "before=0",
        "before=1.5",
        "before=" + "9" * 40,
        "limit=1&limit=2",
        "page=2",
        "limit=%EF%BC%95",  # a fullwidth digit
    ],
)
def test_a_bad_audit_query_is_a_bad_request(query):
    with pytest.raises(BadRequest):
        read_audit_query(request(query=query))


# --- the share of recent orders ----------------------------------------------------


def test_a_groups_share_is_its_recent_orders_over_the_orders_created_recently():
    answer = {
        "count": 2,
        "recent_seconds": 600,
        "groups": [{"group": "a", "recent_orders": 3}, {"group": "b", "recent_orders": 0}],
    }
    shared = with_shares(answer, 12)
    assert shared["orders_created_recently"] == 12
    assert [group["recent_share"] for group in shared["groups"]] == [0.25, 0.0]
    assert (shared["count"], shared["recent_seconds"]) == (2, 600)
    # Unknown while nothing was created, or the generator did not say.
    for created in (0, None):
        assert [g["recent_share"] for g in with_shares(answer, created)["groups"]] == [None, None]


def test_a_share_is_never_above_one_and_is_rounded():
    assert share(5, 3) == 1.0  # orders created just before the window, set aside in it
    assert share(1, 3) == 0.3333

"""Dead letters over RPC and HTTP, with the real services on the real broker.

An OrderCreated event for an order the generator does not have is set aside
at once (OrderNotFound is permanent). The tests make such dead letters, then
list, replay and discard them, and check each guarantee the API makes:
listing takes nothing away, a replay whose cause is gone is processed once,
one that fails again comes back once with its attempts raised (no spin),
concurrent replays act once, and a discard is final and logged.
"""

import logging
from datetime import datetime

import eventlet
import pytest

from gateway.openapi import openapi_document
from harness.broker import handler_queue_messages, publish_order_created, queue_depth
from harness.processes import wait_until
from harness.tables import processed_count, sql
from order_contract import DEAD_LETTER_QUEUE, InvalidArgument
from tests.support.openapi import response_schema, schema_violations

MISSING = 10**9  # order ids no generated order reaches in a test
MARKER = MISSING + 99  # the order of an event sent only to see it handled


@pytest.fixture
def services(services):
    """All three services, started (the fixture is tests/integration/conftest.py's)."""
    return services.start("generator", "processor", "gateway")


def park(services, order_ids):
    """Dead-letter an OrderCreated for each id (none of them exists yet)."""
    before = queue_depth(services.amqp_uri, DEAD_LETTER_QUEUE)
    publish_order_created(services.amqp_uri, [{"order_id": i} for i in order_ids])
    wait_until(
        lambda: queue_depth(services.amqp_uri, DEAD_LETTER_QUEUE) == before + len(order_ids),
        20,
        message=f"{len(order_ids)} dead letters",
    )


def listed(services, limit=100):
    with services.rpc() as rpc:
        return rpc.order_processor.dead_letters(limit)


def messages_held(services):
    """{queue: messages} of the handler's queues (its own, the retry
    queues, the dead letters) that hold any, ready or being handled."""
    return {
        name: count for name, count in handler_queue_messages(services.amqp_uri).items() if count
    }


def processed_ids(services):
    return [order_id for (order_id,) in sql(services.db_uri, "SELECT order_id FROM order_process")]


def add_order(services, order_id, quantity=3):
    """The order the parked event was about, now there (the cause is gone)."""
    sql(
        services.db_uri,
        "INSERT INTO orders (id, quantity, created_at) VALUES (:id, :quantity, UTC_TIMESTAMP(6))",
        id=order_id,
        quantity=quantity,
    )


def assert_documented(path, method, response, body):
    document = openapi_document()
    schema = response_schema(document, path, method, response.status_code)
    assert schema_violations(document, schema, body) == []


def test_listing_takes_nothing_away_and_changes_no_count(services):
    park(services, [MISSING + 1, MISSING + 2, MISSING + 3])
    first = listed(services)
    # (Batches are dead-lettered concurrently: the queue's order is theirs.)
    assert sorted(letter["order_id"] for letter in first) == [MISSING + 1, MISSING + 2, MISSING + 3]
    for letter in first:
        assert letter["reason"] == f"OrderNotFound: order {letter['order_id']} does not exist"
        assert letter["attempts"] == 1
        assert letter["body"] == f'{{"order_id": {letter["order_id"]}}}'
        datetime.fromisoformat(letter["dead_lettered_at"])
    assert len({letter["id"] for letter in first}) == 3
    # Again, in part, over HTTP: the same letters in the same order, none gone.
    assert listed(services, limit=2) == first[:2]
    response, body = services.get("/dead-letters")
    assert response.status_code == 200
    assert body == {"count": 3, "dead_letters": first}
    assert_documented("/dead-letters", "GET", response, body)
    assert listed(services) == first
    assert queue_depth(services.amqp_uri, DEAD_LETTER_QUEUE) == 3
    assert processed_count(services.db_uri) == 0


def test_a_replay_whose_cause_is_gone_is_processed_exactly_once(services):
    park(services, [MISSING])
    (letter,) = listed(services)
    add_order(services, MISSING, quantity=3)
    response, body = services.post("/dead-letters/replay", json={"ids": [letter["id"]]})
    assert (response.status_code, body) == (200, {"replayed": 1})
    assert_documented("/dead-letters/replay", "POST", response, body)
    wait_until(lambda: processed_count(services.db_uri) == 1, 20, message="the replayed order")
    ((quantity, unit_price, execution_price),) = sql(
        services.db_uri,
        "SELECT o.quantity, p.unit_price, p.execution_price "
        "FROM orders o JOIN order_process p ON p.order_id = o.id WHERE o.id = :id",
        id=MISSING,
    )
    assert execution_price == (quantity * unit_price).quantize(execution_price)
    assert listed(services) == []
    # Replaying the same id again finds nothing: it went back once.
    assert services.post("/dead-letters/replay", json={"ids": [letter["id"]]})[1] == {"replayed": 0}
    assert queue_depth(services.amqp_uri, DEAD_LETTER_QUEUE) == 0
    assert processed_count(services.db_uri) == 1


def test_a_replay_that_fails_again_comes_back_once_with_its_attempts_raised(services):
    park(services, [MISSING])
    (letter,) = listed(services)
    response, body = services.post("/dead-letters/replay", json={})  # all of them
    assert (response.status_code, body) == (200, {"replayed": 1})
    (again,) = wait_until(
        lambda: [item for item in listed(services) if item["attempts"] == 2],
        20,
        message="the replayed message back on the dead letters",
    )
    assert again["id"] != letter["id"]  # a new stay on the queue, a new id
    assert again["order_id"] == MISSING and again["reason"] == letter["reason"]
    # It stays there: nothing replays it again by itself. By the time an
    # event sent after it has been handled and set aside, it is still the
    # one letter it was, ahead of that event's, and no copy of it waits to
    # be handled (or retried) again.
    park(services, [MARKER])
    letters = listed(services)
    assert [(item["order_id"], item["attempts"]) for item in letters] == [(MISSING, 2), (MARKER, 1)]
    assert letters[0]["id"] == again["id"]
    assert messages_held(services) == {DEAD_LETTER_QUEUE: 2}


def test_two_concurrent_replays_of_one_message_replay_it_once(services):
    park(services, [MISSING])
    (letter,) = listed(services)

    def replay():
        with services.rpc() as rpc:
            return rpc.order_processor.replay_dead_letters([letter["id"]])["replayed"]

    replays = [eventlet.spawn(replay) for _ in range(2)]
    assert sorted(thread.wait() for thread in replays) == [0, 1]
    # Two copies would fail twice and both come back: one did, and no other
    # by the time an event sent after them has been handled and set aside.
    wait_until(
        lambda: [item["attempts"] for item in listed(services)] == [2],
        20,
        message="one replayed copy back on the dead letters",
    )
    park(services, [MARKER])
    assert [(item["order_id"], item["attempts"]) for item in listed(services)] == [
        (MISSING, 2),
        (MARKER, 1),
    ]
    assert messages_held(services) == {DEAD_LETTER_QUEUE: 2}


def test_a_discard_is_final_and_logged(services, caplog):
    park(services, [MISSING + 1, MISSING + 2])
    gone, kept = sorted(listed(services), key=lambda letter: letter["order_id"])
    with caplog.at_level(logging.WARNING, logger="order_pipeline.dead_letter_queue"):
        response, body = services.post("/dead-letters/discard", json={"ids": [gone["id"]]})
    assert (response.status_code, body) == (200, {"discarded": 1})
    assert_documented("/dead-letters/discard", "POST", response, body)
    (logged,) = [
        r.getMessage() for r in caplog.records if "discarded dead letter" in r.getMessage()
    ]
    assert gone["id"] in logged and str(MISSING + 1) in logged and "for good" in logged
    assert listed(services) == [kept]
    assert services.post("/dead-letters/replay", json={"ids": [gone["id"]]})[1] == {"replayed": 0}
    assert services.post("/dead-letters/discard", json={"ids": [gone["id"]]})[1] == {"discarded": 0}
    # Its order there now, the discarded event would be processed if it
    # were anywhere but gone: an event for another order, sent after the
    # discard, is processed alone, and only the letter kept is left.
    add_order(services, MISSING + 1)
    add_order(services, MARKER)
    publish_order_created(services.amqp_uri, [{"order_id": MARKER}])
    wait_until(lambda: processed_ids(services) == [MARKER], 20, message="the later event processed")
    assert messages_held(services) == {DEAD_LETTER_QUEUE: 1}


def test_the_actions_need_the_token_and_named_dead_letters(services):
    park(services, [MISSING])
    for path in ("/dead-letters/replay", "/dead-letters/discard"):
        response, body = services.post(path, token=None, json={"ids": []})
        assert (response.status_code, body["error"]) == (401, "UNAUTHORIZED")
        response, body = services.post(path, token="wrong", json={"ids": []})
        assert (response.status_code, body["error"]) == (403, "FORBIDDEN")
        for bad in ({"ids": ["nope"]}, {"ids": "all"}, [1], {"ids": [], "more": 1}):
            response, body = services.post(path, json=bad)
            assert (response.status_code, body["error"]) == (400, "BAD_REQUEST"), bad
        response, body = services.post(path, data=b"{not json")
        assert (response.status_code, body["error"]) == (400, "BAD_REQUEST")
    response, body = services.post("/dead-letters/discard", json={})
    assert (response.status_code, body["error"]) == (400, "BAD_REQUEST")
    assert len(listed(services)) == 1


def test_bad_arguments_over_rpc_are_named_errors(services):
    with services.rpc() as rpc:
        for call in (
            lambda: rpc.order_processor.dead_letters(0),
            lambda: rpc.order_processor.replay_dead_letters("all"),
            lambda: rpc.order_processor.discard_dead_letters(None),
        ):
            with pytest.raises(InvalidArgument):
                call()


def test_with_the_processor_down_the_actions_are_503(services):
    services.stop("processor")
    response, body = services.get("/dead-letters")
    assert (response.status_code, body["error"]) == (503, "SERVICE_UNAVAILABLE")
    response, body = services.post("/dead-letters/replay", json={})
    assert (response.status_code, body["error"]) == (503, "SERVICE_UNAVAILABLE")

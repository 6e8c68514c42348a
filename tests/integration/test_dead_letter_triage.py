"""Failure triage over HTTP, with the real services on the real broker and
database: dead letters grouped by cause, a whole group replayed or
discarded once per letter however many operators click at once, one dead
letter inspected and edited (and a bad edit refused with the contract's
named error), and the audit trail that records each of those, a page at a
time, which no interface can change.

Poison events are made as in test_dead_letters.py: an OrderCreated for an
order the generator does not have is dead-lettered at once (OrderNotFound),
and one whose order_id is not an integer too (InvalidEvent)."""

import hashlib
import json
import logging

import eventlet
import pytest
from kombu import Producer
from nameko.constants import PERSISTENT

from gateway.openapi import openapi_document
from harness.broker import event_exchange, publish_order_created
from harness.processes import TEST_TOKEN, wait_until
from harness.tables import dead_letter_rows, parked_dead_letters, sql
from order_contract import ORDER_CREATED
from order_pipeline.broker import connect
from tests.support.openapi import response_schema, schema_violations
from tests.support.services import PATIENT_RPC_TIMEOUT, InProcessServices

MISSING = 10**9  # order ids no generated order reaches in a test
NEXT_TOKEN = "Nx2-NeXt_CoNtrol9mKq2Wx9Zp3Lv8Hc"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
NOT_FOUND_CAUSE = "order <n> does not exist"
PROCESSING_FRAME = "processor_service/processing.py:process_order_batch"


@pytest.fixture
def services(make_database, make_vhost):
    running = InProcessServices(
        make_database(),
        make_vhost(),
        GATEWAY_NEXT_TOKEN=NEXT_TOKEN,
        RPC_TIMEOUT_SECONDS=PATIENT_RPC_TIMEOUT,
    )
    running.start("generator", "processor", "gateway")
    yield running
    running.stop_all()


def fingerprint_of(token):
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:12]


def park(services, payloads):
    """Publish each payload as an OrderCreated event and wait until the
    processor keeps them all as dead letters."""
    before = parked_dead_letters(services.db_uri)
    publish_order_created(services.amqp_uri, payloads)
    wait_until(
        lambda: parked_dead_letters(services.db_uri) == before + len(payloads),
        20,
        message=f"{len(payloads)} more dead letters kept",
    )


def add_orders(services, order_ids, quantity=3):
    for order_id in order_ids:
        sql(
            services.db_uri,
            "INSERT INTO orders (id, quantity, created_at) VALUES (:id, :q, UTC_TIMESTAMP(6))",
            id=order_id,
            q=quantity,
        )


def processed(services, order_ids):
    rows = sql(
        services.db_uri,
        "SELECT order_id, COUNT(*) FROM order_process WHERE order_id IN :ids GROUP BY order_id",
        ids=tuple(order_ids),
    )
    return dict(rows)


def states(services):
    return {row.id: row.state for row in dead_letter_rows(services.db_uri)}


def groups(services):
    response, body = services.get("/dead-letters/groups")
    assert response.status_code == 200, body
    assert_documented("/dead-letters/groups", "GET", response, body)
    return body


def group_of(services, cause):
    (group,) = [group for group in groups(services)["groups"] if group["cause"] == cause]
    return group


def audit_trail(services, **params):
    response, body = services.get("/dead-letters/audit", params=params)
    assert response.status_code == 200, body
    assert_documented("/dead-letters/audit", "GET", response, body)
    return body


def assert_documented(path, method, response, body):
    document = openapi_document()
    schema = response_schema(document, path, method, response.status_code)
    assert schema_violations(document, schema, body) == []


# --- groups ---------------------------------------------------------------------


def test_dead_letters_are_grouped_by_cause_with_the_share_of_recent_orders(services):
    # Six orders created (and processed) in the last ten minutes...
    for quantity in range(1, 7):
        assert services.post("/orders", json={"quantity": quantity})[0].status_code == 201
    # ...then three events for orders that do not exist, and two malformed.
    park(services, [{"order_id": MISSING + n} for n in range(3)])
    park(services, [{"order_id": "x"}, {"order_id": "y"}])

    answer = groups(services)
    assert (answer["count"], answer["recent_seconds"]) == (2, 600)
    assert answer["orders_created_recently"] == 6
    missing, malformed = answer["groups"]  # the largest first
    assert (missing["error_type"], missing["cause"], missing["frame"]) == (
        "OrderNotFound",
        NOT_FOUND_CAUSE,
        PROCESSING_FRAME,
    )
    assert (missing["count"], missing["recent_orders"], missing["recent_share"]) == (3, 3, 0.5)
    assert (malformed["error_type"], malformed["count"]) == ("InvalidEvent", 2)
    assert malformed["cause"] == "OrderCreated needs a positive integer order_id, got {<q>: <q>}"
    # A malformed event names no order: it affects none.
    assert (malformed["recent_orders"], malformed["recent_share"]) == (0, 0.0)
    rows = {row.id: row for row in dead_letter_rows(services.db_uri)}
    for group in (missing, malformed):
        members = [row for row in rows.values() if row.fingerprint == group["group"]]
        assert len(members) == group["count"]
        example = group["example"]
        assert example["id"] in {row.id for row in members}
        assert example["dead_lettered_at"] == group["last_seen"]
        assert group["first_seen"] <= group["last_seen"]
        assert group["first_seen"] == min(
            letter["first_failed_at"] for letter in listed(services, members)
        )


def listed(services, rows):
    ids = {row.id for row in rows}
    return [
        letter for letter in services.get("/dead-letters")[1]["dead_letters"] if letter["id"] in ids
    ]


def test_two_operators_replaying_one_group_at_once_replay_each_letter_once(services):
    letters = [MISSING + n for n in range(30)]
    park(services, [{"order_id": order_id} for order_id in letters])
    park(services, [{"order_id": "x"}] * 5)  # another cause, left alone
    add_orders(services, letters)  # the cause of the first group is gone
    group = group_of(services, NOT_FOUND_CAUSE)["group"]

    def replay(token):
        response, body = services.post(f"/dead-letters/groups/{group}/replay", token=token)
        assert response.status_code == 200, body
        assert_documented("/dead-letters/groups/{group}/replay", "POST", response, body)
        return body

    both = [eventlet.spawn(replay, TEST_TOKEN), eventlet.spawn(replay, NEXT_TOKEN)]
    answers = [thread.wait() for thread in both]
    assert sum(answer["replayed"] for answer in answers) == 30
    wait_until(lambda: len(processed(services, letters)) == 30, 30, message="thirty processed")
    assert set(processed(services, letters).values()) == {1}
    assert replay(TEST_TOKEN) == {"replayed": 0, "left": 0}
    by_group = {}
    for row in dead_letter_rows(services.db_uri):
        by_group.setdefault(row.fingerprint, set()).add(row.state)
    assert by_group.pop(group) == {"replayed"}
    assert list(by_group.values()) == [{"parked"}]  # the other group untouched

    # The trail: one entry per call, each with its token, each letter in one.
    entries = [e for e in audit_trail(services)["entries"] if e["scope"] == "group"]
    assert len(entries) == 3
    assert {e["actor"]["name"] for e in entries} == {"control", "control-next"}
    acted = [letter_id for e in entries for letter_id in e["dead_letter_ids"]]
    assert len(acted) == len(set(acted)) == 30
    assert {(e["action"], e["target"], e["outcome"]) for e in entries} == {
        ("replay", group, "done")
    }


def test_two_operators_discarding_one_group_at_once_discard_each_letter_once(services, caplog):
    park(services, [{"order_id": MISSING + n} for n in range(20)])
    group = group_of(services, NOT_FOUND_CAUSE)["group"]

    def discard():
        response, body = services.post(f"/dead-letters/groups/{group}/discard")
        assert response.status_code == 200, body
        assert_documented("/dead-letters/groups/{group}/discard", "POST", response, body)
        return body["discarded"]

    with caplog.at_level(logging.WARNING, logger="processor_service.dead_letters"):
        both = [eventlet.spawn(discard), eventlet.spawn(discard)]
        assert sum(thread.wait() for thread in both) == 20
    logged = [r.getMessage() for r in caplog.records if "discarded dead letter" in r.getMessage()]
    assert len(logged) == 20
    assert set(states(services).values()) == {"discarded"}
    assert groups(services) == {
        "count": 0,
        "recent_seconds": 600,
        "orders_created_recently": 0,
        "groups": [],
    }


def test_group_actions_need_the_control_token_and_a_group(services):
    park(services, [{"order_id": MISSING}])
    group = group_of(services, NOT_FOUND_CAUSE)["group"]
    for action in ("replay", "discard"):
        path = f"/dead-letters/groups/{group}/{action}"
        response, body = services.post(path, token=None)
        assert (response.status_code, body["error"]) == (401, "UNAUTHORIZED")
        response, body = services.post("/dead-letters/groups/NOT-A-GROUP-HEXX/" + action)
        assert (response.status_code, body["error"]) == (400, "BAD_REQUEST")
        response, body = services.get(path)
        assert (response.status_code, body["error"]) == (405, "METHOD_NOT_ALLOWED")
    # A group nobody has: nothing done, said so.
    response, body = services.post("/dead-letters/groups/0000000000000000/replay")
    assert (response.status_code, body) == (200, {"replayed": 0, "left": 0})
    assert parked_dead_letters(services.db_uri) == 1


# --- inspect and edit ------------------------------------------------------------------


def publish_traced(amqp_uri, payload):
    """An OrderCreated event that carries a trace, as the generator's do."""
    traceparent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    with connect(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        Producer(connection.channel(), exchange=event_exchange()).publish(
            payload,
            routing_key=ORDER_CREATED,
            serializer="json",
            delivery_mode=PERSISTENT,
            headers={"nameko.traceparent": traceparent},
            declare=[event_exchange()],
        )


def test_inspecting_a_dead_letter_shows_its_body_trace_attempts_and_history(services):
    publish_traced(services.amqp_uri, {"order_id": MISSING})
    wait_until(lambda: parked_dead_letters(services.db_uri) == 1, 20, message="the dead letter")
    # Replayed while its cause is still there, it comes back: two failures.
    assert services.post("/dead-letters/replay", json={})[1] == {"replayed": 1}
    wait_until(lambda: parked_dead_letters(services.db_uri) == 1, 20, message="it back")
    (first, again) = dead_letter_rows(services.db_uri)
    response, letter = services.get(f"/dead-letters/{again.id}")
    assert response.status_code == 200
    assert_documented("/dead-letters/{dead_letter_id}", "GET", response, letter)
    assert letter["body"] == f'{{"order_id": {MISSING}}}'
    assert (letter["trace_id"], letter["attempts"], letter["state"]) == (TRACE_ID, 2, "parked")
    assert [f["error_type"] for f in letter["failures"]] == ["OrderNotFound", "OrderNotFound"]
    assert [f["at"] for f in letter["failures"]] == [
        letter["first_failed_at"],
        letter["last_failed_at"],
    ]
    assert letter["failures"][0]["message"] == f"order {MISSING} does not exist"
    assert letter["failures"][0]["frame"].startswith(PROCESSING_FRAME + ":")
    assert (letter["group"], letter["cause"]) == (again.fingerprint, NOT_FOUND_CAUSE)
    assert (letter["edited_from"], letter["edited_as"]) == (None, None)
    # The first stay is still there to inspect, replayed.
    old = services.get(f"/dead-letters/{first.id}")[1]
    assert (old["state"], old["attempts"]) == ("replayed", 1)
    assert old["resolved_at"] >= old["dead_lettered_at"]
    response, body = services.get("/dead-letters/0000000000000000")
    assert (response.status_code, body["error"]) == (404, "NOT_FOUND")
    response, body = services.get("/dead-letters/NOT-HEX-DIGITS-X")
    assert (response.status_code, body["error"]) == (400, "BAD_REQUEST")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {"order_id": "42"},
            "OrderCreated needs a positive integer order_id, got {'order_id': '42'}",
        ),
        ({"order_id": 0}, "OrderCreated needs a positive integer order_id, got {'order_id': 0}"),
        ([42], "OrderCreated needs a positive integer order_id, got [42]"),
        (
            {"order_id": MISSING + 7},
            f"OrderCreated names order {MISSING + 7}, which the generator does not have",
        ),
    ],
)
def test_an_edit_the_contract_refuses_is_a_400_naming_the_error_and_changes_nothing(
    services, payload, message
):
    park(services, [{"order_id": MISSING}])
    (row,) = dead_letter_rows(services.db_uri)
    response, body = services.post(f"/dead-letters/{row.id}/edit", json={"payload": payload})
    assert (response.status_code, body) == (400, {"error": "INVALID_PAYLOAD", "message": message})
    assert states(services) == {row.id: "parked"}
    (entry,) = audit_trail(services)["entries"]
    assert (entry["action"], entry["target"], entry["outcome"], entry["count"]) == (
        "edit",
        row.id,
        "refused",
        0,
    )
    assert entry["detail"] == f"refused (InvalidPayload): {message}"
    assert entry["change"] == {"to": json.dumps(payload, separators=(", ", ": "))}


def test_an_edit_that_is_no_payload_object_is_a_bad_request_before_the_processor(services):
    park(services, [{"order_id": MISSING}])
    (row,) = dead_letter_rows(services.db_uri)
    for body in ({"order_id": 7}, {"payload": {"order_id": 7}, "more": 1}, [1]):
        response, answer = services.post(f"/dead-letters/{row.id}/edit", json=body)
        assert (response.status_code, answer["error"]) == (400, "BAD_REQUEST"), body
    response, answer = services.post(
        f"/dead-letters/{row.id}/edit", token=None, json={"payload": {"order_id": 7}}
    )
    assert (response.status_code, answer["error"]) == (401, "UNAUTHORIZED")
    assert audit_trail(services)["entries"] == []  # nothing reached the processor


def test_an_edit_goes_out_as_a_new_message_and_the_original_is_resolved_once(services):
    park(services, [{"order_id": MISSING}, {"order_id": "x"}])
    poison, malformed = sorted(
        dead_letter_rows(services.db_uri), key=lambda row: row.order_id is None
    )
    corrected = [MISSING + 500, MISSING + 501]
    add_orders(services, corrected)

    response, edited = services.post(
        f"/dead-letters/{poison.id}/edit", json={"payload": {"order_id": corrected[0]}}
    )
    assert response.status_code == 200, edited
    assert_documented("/dead-letters/{dead_letter_id}/edit", "POST", response, edited)
    assert edited["edited"] == poison.id and edited["message_id"] != poison.id
    assert edited["payload"] == {"order_id": corrected[0]}
    # A body that was not even an order is fixed the same way.
    fixed = services.post(
        f"/dead-letters/{malformed.id}/edit", json={"payload": {"order_id": corrected[1]}}
    )[1]
    wait_until(
        lambda: processed(services, corrected) == {corrected[0]: 1, corrected[1]: 1},
        20,
        message="both edits processed",
    )
    original = services.get(f"/dead-letters/{poison.id}")[1]
    assert (original["state"], original["edited_as"]) == ("edited", edited["message_id"])
    assert services.get(f"/dead-letters/{malformed.id}")[1]["edited_as"] == fixed["message_id"]
    assert groups(services)["groups"] == []

    # Once only: a second edit, or a replay, of the same letter finds it resolved.
    response, body = services.post(
        f"/dead-letters/{poison.id}/edit", json={"payload": {"order_id": corrected[0]}}
    )
    assert (response.status_code, body) == (
        409,
        {"error": "CONFLICT", "message": f"dead letter {poison.id} is edited, no longer parked"},
    )
    assert services.post("/dead-letters/replay", json={"ids": [poison.id]})[1] == {"replayed": 0}
    response, body = services.post(
        "/dead-letters/00000000000000ff/edit", json={"payload": {"order_id": corrected[0]}}
    )
    assert (response.status_code, body["error"]) == (404, "NOT_FOUND")
    assert processed(services, corrected) == {corrected[0]: 1, corrected[1]: 1}

    edits = [e for e in audit_trail(services)["entries"] if e["action"] == "edit"]
    assert [(e["target"], e["outcome"]) for e in edits] == [  # newest first
        ("00000000000000ff", "refused"),
        (poison.id, "refused"),
        (malformed.id, "done"),
        (poison.id, "done"),
    ]
    assert edits[3]["change"] == {
        "from": f'{{"order_id": {MISSING}}}',
        "to": f'{{"order_id": {corrected[0]}}}',
        "message_id": edited["message_id"],
    }
    assert edits[3]["dead_letter_ids"] == [poison.id] and edits[3]["count"] == 1
    assert edits[2]["change"]["from"] == '{"order_id": "x"}'
    assert edits[1]["detail"] == (
        f"refused (DeadLetterNotParked): dead letter {poison.id} is edited, no longer parked"
    )


def test_an_edit_that_fails_again_comes_back_naming_the_letter_it_replaced(
    make_database, make_vhost
):
    """The price feed is down (and one attempt is all): the edited event,
    about an order that exists, fails at pricing and is parked again; the
    new dead letter names the one it was an edit of, with the whole history."""
    services = InProcessServices(
        make_database(),
        make_vhost(),
        PRICE_SOURCE="http",
        PRICE_FEED_URL="http://127.0.0.1:9/price",  # the discard port: nothing answers
        RETRY_MAX_ATTEMPTS=1,
    )
    try:
        services.start("generator", "processor", "gateway")
        park(services, [{"order_id": MISSING}])
        (original,) = dead_letter_rows(services.db_uri)
        add_orders(services, [MISSING + 1])
        edited = services.post(
            f"/dead-letters/{original.id}/edit", json={"payload": {"order_id": MISSING + 1}}
        )[1]
        wait_until(lambda: parked_dead_letters(services.db_uri) == 1, 20, message="it back")
        (again,) = [row for row in dead_letter_rows(services.db_uri) if row.state == "parked"]
        letter = services.get(f"/dead-letters/{again.id}")[1]
        assert (letter["edited_from"], letter["order_id"]) == (original.id, MISSING + 1)
        assert letter["error_type"] == "PriceUnavailable" and letter["attempts"] == 2
        assert [f["error_type"] for f in letter["failures"]] == [
            "OrderNotFound",
            "PriceUnavailable",
        ]
        assert json.loads(again.headers)["x-message-id"] == edited["message_id"]
        assert services.get(f"/dead-letters/{original.id}")[1]["edited_as"] == edited["message_id"]
    finally:
        services.stop_all()


# --- the audit trail -----------------------------------------------------------------


def test_the_audit_trail_says_who_did_what_when_and_how_it_ended_a_page_at_a_time(services):
    park(services, [{"order_id": MISSING + n} for n in range(4)])
    ids = sorted(row.id for row in dead_letter_rows(services.db_uri))
    # Five actions, by both control tokens.
    assert services.post("/dead-letters/discard", json={"ids": ids[:1]})[1] == {"discarded": 1}
    assert services.post("/dead-letters/replay", json={"ids": ids[1:2]}, token=NEXT_TOKEN)[1] == {
        "replayed": 1
    }
    assert services.post("/dead-letters/discard", json={"ids": ids[:1]})[1] == {"discarded": 0}
    # The replayed letter comes back (its order is still missing).
    wait_until(lambda: parked_dead_letters(services.db_uri) == 3, 20, message="it back")
    group = group_of(services, NOT_FOUND_CAUSE)["group"]
    services.post(f"/dead-letters/groups/{group}/discard")
    with services.rpc() as rpc:  # a caller with the broker's credentials, no token
        assert rpc.order_processor.replay_dead_letters([]) == {"replayed": 0}

    first = audit_trail(services, limit=2)
    second = audit_trail(services, limit=2, before=first["next_before"])
    third = audit_trail(services, limit=2, before=second["next_before"])
    assert third["next_before"] is None
    entries = first["entries"] + second["entries"] + third["entries"]
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    assert [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)
    control = {"name": "control", "token": fingerprint_of(TEST_TOKEN)}
    summary = [
        (e["actor"], e["action"], e["scope"], e["dead_letter_ids"], e["outcome"], e["detail"])
        for e in reversed(entries)
    ]
    # The group discard took the replayed letter back among them.
    group_ids = sorted(set(states(services)) - set(ids[:2]))
    assert len(group_ids) == 3
    assert summary[:4] == [
        (control, "discard", "ids", ids[:1], "done", "discarded 1"),
        (
            {"name": "control-next", "token": fingerprint_of(NEXT_TOKEN)},
            "replay",
            "ids",
            ids[1:2],
            "done",
            "replayed 1",
        ),
        (control, "discard", "ids", [], "done", "discarded 0 (none was parked and free)"),
        (control, "discard", "group", summary[3][3], "done", "discarded 3"),
    ]
    assert sorted(summary[3][3]) == group_ids
    assert summary[4] == (
        {"name": "rpc", "token": None},
        "replay",
        "ids",
        [],
        "done",
        "replayed 0 (none was parked and free)",
    )
    # The token itself is nowhere in the trail, nor in the table.
    shown = json.dumps(entries) + json.dumps(
        [tuple(r) for r in sql(services.db_uri, "SELECT * FROM dead_letter_audit")], default=str
    )
    assert TEST_TOKEN not in shown and NEXT_TOKEN not in shown


def test_an_action_that_fails_is_in_the_trail_as_failed(services):
    park(services, [{"order_id": MISSING}])
    (row,) = dead_letter_rows(services.db_uri)
    services.stop("generator")  # the edit's order cannot be confirmed
    response, body = services.post(
        f"/dead-letters/{row.id}/edit", json={"payload": {"order_id": 7}}
    )
    assert (response.status_code, body["error"]) == (503, "SERVICE_UNAVAILABLE")
    (entry,) = wait_until(
        lambda: audit_trail(services)["entries"], 20, message="the failed edit recorded"
    )
    assert (entry["action"], entry["target"], entry["outcome"]) == ("edit", row.id, "failed")
    assert entry["detail"] in {
        "failed (RpcTimeout): not sent",
        "failed (ServiceUnavailable): not sent",
    }
    assert states(services) == {row.id: "parked"}


def test_no_interface_changes_the_audit_trail(services):
    services.post("/dead-letters/replay", json={})
    (entry,) = audit_trail(services)["entries"]
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        response, body = services.request(
            method, "/dead-letters/audit", token=TEST_TOKEN, json={"entries": []}
        )
        assert (response.status_code, body["error"]) == (405, "METHOD_NOT_ALLOWED"), method
    assert audit_trail(services)["entries"] == [entry]

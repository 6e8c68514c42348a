"""Dead letters as the processor reads them off the queue
(order_pipeline.dead_letters.read_dead_letter) and keeps them
(processor_service.dead_letters.row_of), without a broker: whatever the
headers say, a message is kept, with its texts scrubbed."""

import json
from datetime import datetime
from types import SimpleNamespace

from order_contract import validate_dead_letter_ids
from order_pipeline.dead_letters import read_dead_letter, replay_headers
from order_pipeline.failures import Failure, encode_failures
from order_pipeline.queues import HANDLER_DELIVERY_LIMIT
from order_pipeline.scrub import Scrubber
from processor_service.dead_letters import PARKED, row_of
from processor_service.dependencies import order_id_of

NOW = datetime(2026, 1, 2, 3, 4, 5, 6)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def message(body, headers, content_type="application/json"):
    return SimpleNamespace(
        body=body,
        properties={
            "application_headers": headers,
            "content_type": content_type,
            "content_encoding": "utf-8",
        },
    )


def read(body, headers, **kwargs):
    return read_dead_letter(message(body, headers, **kwargs), Scrubber(), NOW)


HISTORY = [
    Failure("2026-01-01T00:00:01.000000Z", "PriceUnavailable", "feed down", "p.py:f:1"),
    Failure("2026-01-01T00:00:09.000000Z", "OrderNotFound", "order 42 does not exist", "q.py:g:2"),
]


def test_a_dead_letter_is_read_from_the_headers_the_handler_gave_it():
    record = read(
        b'{"order_id": 42}',
        {
            "x-dead-letter-id": "0123456789abcdef",
            "x-dead-lettered-at": "2026-01-01T00:00:09.000001Z",
            "x-error": "OrderNotFound: order 42 does not exist",
            "x-attempt": 3,
            "x-failures": encode_failures(HISTORY),
            "x-delivery-count": 2,
            "nameko.traceparent": TRACEPARENT,
        },
    )
    assert record.id == "0123456789abcdef"
    assert (record.attempts, record.error_type, record.failing_frame) == (
        3,
        "OrderNotFound",
        "q.py:g:2",
    )
    assert record.reason == "OrderNotFound: order 42 does not exist"
    assert record.error_message == "order 42 does not exist"
    assert record.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert record.dead_lettered_at == datetime(2026, 1, 1, 0, 0, 9, 1)
    assert (record.first_failed_at, record.last_failed_at) == (
        datetime(2026, 1, 1, 0, 0, 1),
        datetime(2026, 1, 1, 0, 0, 9),
    )
    assert list(record.failures) == HISTORY
    # What a replay sends again: not this stay's id, time or delivery count.
    assert set(record.headers) == {"x-error", "x-attempt", "x-failures", "nameko.traceparent"}
    assert replay_headers(json.dumps({**record.headers, "x-dead-letter-id": "x"})) == record.headers

    row = row_of(record, order_id_of(record.body.decode()))
    assert (row["id"], row["state"], row["order_id"]) == ("0123456789abcdef", PARKED, 42)
    assert json.loads(row["failures"])[0]["error_type"] == "PriceUnavailable"


def test_what_was_recorded_unscrubbed_is_scrubbed_when_it_is_kept():
    leaky = "PriceUnavailable: price feed http://u:secret@prices.internal/p failed at 10.1.2.3"
    record = read(
        b"{}",
        {
            "x-error": leaky,
            "x-failures": json.dumps([{"at": "2026-01-01T00:00:01Z", "message": leaky}]),
        },
    )
    assert record.reason == "PriceUnavailable: price feed <url> failed at <address>"
    assert "secret" not in record.failures[0].message
    assert record.headers["x-error"] == record.reason


def test_a_message_set_aside_before_ids_and_histories_gets_both_from_what_it_has():
    old = read(b"\xffnot json", {"x-error": "gave up after 50 attempts: TimeoutError: slow"})
    again = read(b"\xffnot json", {"x-error": "gave up after 50 attempts: TimeoutError: slow"})
    other = read(b"other", {"x-error": "gave up after 50 attempts: TimeoutError: slow"})
    assert old.id == again.id != other.id  # identical copies are one dead letter
    validate_dead_letter_ids([old.id])
    assert (old.error_type, old.error_message) == ("TimeoutError", "slow")
    assert (old.attempts, old.failures, old.first_failed_at, old.failing_frame) == (
        0,
        (),
        None,
        None,
    )
    assert old.dead_lettered_at == NOW  # when it was taken off the queue
    assert order_id_of(old.body.decode("utf-8", "replace")) is None


def test_one_the_broker_set_aside_past_the_delivery_limit_says_so():
    record = read(
        b'{"order_id": 7}',
        {
            "x-death": [{"count": 1, "reason": "delivery_limit", "time": NOW, "queue": "q"}],
            "x-first-death-reason": "delivery_limit",
            "x-first-death-queue": "q",
            "x-delivery-count": 101,
        },
    )
    assert record.error_type == "DeliveryLimit"
    assert str(HANDLER_DELIVERY_LIMIT) in record.reason
    assert record.headers == {}  # the broker's own records do not go back


def test_header_values_any_amqp_table_holds_are_kept_as_json():
    record = read(b"{}", {"when": NOW, "raw": b"\xff", "n": [1, {"a": b"b"}], "flag": True})
    assert json.loads(json.dumps(record.headers)) == {
        "when": "2026-01-02T03:04:05.000006Z",
        "raw": "\ufffd",
        "n": [1, {"a": "b"}],
        "flag": True,
    }
